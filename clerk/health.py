"""The checks behind `manage.py clerk_check`: is this deployment able to serve Clerk?

    register_check(name, check, *, order, needs_database=True)   layers above add theirs
    registered_checks(), run_all(options) -> [Result], exit_status(results)
    Level (OK 0, WARNING 1, FAILURE 2, SKIPPED), Result, Options, format_age(age)

clerk's own checks: settings, database, cache, clerk_api, outbox, push. A check returns one `Result`
or a list; the worst level is the exit status; SKIPPED (database down) does not count. A check
never raises (a crash is a FAILURE), and no message carries a token, a key, an email or a name.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks as django_checks
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from clerk.client import ClerkRefused, ClerkUnreachable, get_client
from clerk.models import Action, ClerkDeletion, Status


class Level(IntEnum):
    OK = 0
    WARNING = 1
    FAILURE = 2
    SKIPPED = -1

    @property
    def label(self) -> str:
        return {0: "ok", 1: "warning", 2: "failure", -1: "skipped"}[int(self)]


@dataclass(frozen=True)
class Result:
    name: str
    level: Level
    message: str
    details: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.details) > MAX_DETAILS:
            shown = self.details[:MAX_DETAILS] + (f"… and {len(self.details) - MAX_DETAILS} more",)
            object.__setattr__(self, "details", shown)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level.label, "message": self.message, "details": list(self.details)}


@dataclass(frozen=True)
class Options:
    """What the checks may be told from the command line."""

    sample: int = 100
    outbox_warn_minutes: int = 30
    outbox_fail_minutes: int = 24 * 60
    outbox_warn_attempts: int = 5
    push_fail_minutes: int = 60  # a push exists to be fast: an hour means the worker is not running
    import_max_age_hours: int = 48
    sweep_max_age_hours: int = 26  # the worker sweeps hourly, a daily cron every 24 h
    skip: frozenset[str] = field(default_factory=frozenset)


MAX_DETAILS = 10  # per check: enough to act on, short enough to read


# --- settings ----------------------------------------------------------------------------------
def check_settings(options: Options) -> Result:
    """Django's system checks with the deployment ones (`check --deploy`), databases aside."""
    messages = [m for m in django_checks.run_checks(include_deployment_checks=True) if not m.is_silenced()]
    serious = [m for m in messages if m.level >= django_checks.ERROR]
    warnings = [m for m in messages if django_checks.WARNING <= m.level < django_checks.ERROR]
    details = tuple(f"{m.id}: {m.msg}" for m in serious + warnings)
    if serious:
        ids = ", ".join(m.id or "?" for m in serious)
        return Result("settings", Level.FAILURE, f"check --deploy reports {len(serious)} error(s): {ids}", details)
    if warnings:
        ids = ", ".join(m.id or "?" for m in warnings)
        return Result("settings", Level.WARNING, f"check --deploy reports {len(warnings)} warning(s): {ids}", details)
    return Result("settings", Level.OK, "check --deploy reports no issues")


# --- database ----------------------------------------------------------------------------------
def check_database(options: Options) -> Result:
    """Every configured database answers; the primary has every migration applied."""
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:
            return Result(
                "database",
                Level.FAILURE,
                f"database {alias!r} is unreachable: {type(exc).__name__}: {_first_line(exc)}",
            )
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = tuple(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
        return Result("database", Level.FAILURE, f"{len(plan)} migration(s) not applied: run manage.py migrate", names)
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    return Result(
        "database", Level.OK, f"{len(connections.settings)} database(s) reachable ({vendor}), migrations applied"
    )


# --- cache -------------------------------------------------------------------------------------
PER_PROCESS_CACHES = {"django.core.cache.backends.locmem.LocMemCache"}
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"


def check_cache(options: Options) -> Result:
    """The cache that holds token verifications and pagination cursors is shared and answers."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    workers = settings.CLERK_WEB_WORKERS
    if backend == DUMMY_CACHE:
        return Result(
            "cache", Level.FAILURE, "the cache is the dummy cache: every page calls Clerk and no cursor is kept"
        )
    if backend in PER_PROCESS_CACHES and workers > 1:
        return Result(
            "cache",
            Level.FAILURE,
            f"the cache is per-process (local memory) but CLERK_WEB_WORKERS is {workers}: "
            "set CACHE_URL to a shared cache (Redis)",
        )
    key, value = f"clerkfeeds:clerk_check:{secrets.token_hex(8)}", secrets.token_hex(8)
    try:
        cache.set(key, value, timeout=30)
        round_trip = cache.get(key) == value
        cache.delete(key)
    except Exception as exc:
        return Result("cache", Level.FAILURE, f"the cache is unreachable: {type(exc).__name__}: {_first_line(exc)}")
    if not round_trip:
        return Result("cache", Level.FAILURE, "the cache did not return a value just stored")
    if backend in PER_PROCESS_CACHES:
        return Result(
            "cache",
            Level.WARNING,
            "the cache is per-process (local memory): fine for one web process only; "
            "use Redis (CACHE_URL) before running several",
        )
    return Result("cache", Level.OK, f"shared cache answers ({backend.rsplit('.', 1)[-1]})")


# --- Clerk's token service ---------------------------------------------------------------------
def check_clerk_api(options: Options) -> Result:
    """A real call to Clerk's token verification with the configured public key.

    The token is a random dummy, so the expected answer is a refusal: it proves Clerk is
    reachable and answering. An acceptance of a dummy token means CLERK_API_URL is not Clerk.
    """
    if not settings.CLERK_PUBLIC_KEY:
        return Result("clerk_api", Level.FAILURE, "CLERK_PUBLIC_KEY is empty: tokens cannot be verified")
    where = urlsplit(settings.CLERK_API_URL).netloc or settings.CLERK_API_URL
    started = time.monotonic()
    try:
        get_client().verify_token(f"clerkfeeds-check-{secrets.token_hex(12)}")
    except ClerkUnreachable as exc:
        return Result("clerk_api", Level.FAILURE, f"Clerk's token service at {where} cannot be reached: {exc}")
    except ClerkRefused as exc:
        ms = (time.monotonic() - started) * 1000
        why = exc.error_type or f"HTTP {exc.status}"
        return Result(
            "clerk_api",
            Level.OK,
            f"Clerk's token service at {where} answered in {ms:.0f} ms (refused the check's dummy token: {why})",
        )
    return Result(
        "clerk_api",
        Level.WARNING,
        f"the token service at {where} accepted a random dummy token: is CLERK_API_URL really Clerk?",
    )


# --- the outbox ------------------------------------------------------------------------------------
def check_outbox(options: Options) -> Result:
    """Deletions for Clerk are delivered: none refused for good, none waiting too long."""
    now = timezone.now()
    deletions = ClerkDeletion.objects.exclude(action=Action.PUSH)
    failed = deletions.filter(status=Status.FAILED).count()
    pending = deletions.filter(status=Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    count = pending.count()
    retried = pending.filter(attempts__gte=options.outbox_warn_attempts).count()
    if failed:
        return Result(
            "outbox",
            Level.FAILURE,
            f"{failed} deletion(s) refused by Clerk for good: see the outbox in the admin (GDPR: they must reach Clerk)",
        )
    if oldest is None:
        return Result("outbox", Level.OK, "no deletion waiting for Clerk")
    age = now - oldest
    waiting = f"{count} deletion(s) waiting, the oldest for {format_age(age)}"
    if age >= dt.timedelta(minutes=options.outbox_fail_minutes):
        return Result(
            "outbox", Level.FAILURE, f"outbox stuck: {waiting}: is the clerk_sync worker running, is Clerk reachable?"
        )
    if age >= dt.timedelta(minutes=options.outbox_warn_minutes):
        return Result("outbox", Level.WARNING, f"outbox slow: {waiting}: is the clerk_sync worker running?")
    if retried:
        return Result("outbox", Level.WARNING, f"{waiting}; {retried} retried {options.outbox_warn_attempts}+ times")
    return Result("outbox", Level.OK, waiting)


# --- pushes ------------------------------------------------------------------------------------
def check_push(options: Options) -> Result:
    """Pushes reach Clerk: the oldest pending one is younger than `push_fail_minutes`; a push
    Clerk refused is a warning naming the object and Clerk's reason (its feed still serves it)."""
    pushes = ClerkDeletion.objects.filter(action=Action.PUSH)
    pending = pushes.filter(status=Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    failed = pushes.filter(status=Status.FAILED)
    failed_count = failed.count()
    if oldest is not None:
        age = timezone.now() - oldest
        waiting = f"{pending.count()} push(es) waiting, the oldest for {format_age(age)}"
        if age >= dt.timedelta(minutes=options.push_fail_minutes):
            return Result(
                "push",
                Level.FAILURE,
                f"push stuck: {waiting} (over {options.push_fail_minutes} min): is the clerk_sync worker running?",
            )
    else:
        waiting = "no push waiting"
    if failed_count:
        latest = failed.order_by("-id").values_list("object_type", "object_id", "last_error")[:MAX_DETAILS]
        details = tuple(f"{t} {i}: {(e.splitlines() or [''])[0][:200]}" for t, i, e in latest)
        return Result("push", Level.WARNING, f"{waiting}; {failed_count} push(es) refused by Clerk", details)
    return Result("push", Level.OK, waiting)


# --- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Options], Result | list[Result]]
    order: int  # where its results come in the report
    needs_database: bool = True


_CHECKS: dict[str, Check] = {}


def register_check(
    name: str, check: Callable[[Options], Result | list[Result]], *, order: int, needs_database: bool = True
) -> None:
    """Add (or replace) the check `name`; `needs_database`: SKIPPED while the database is down."""
    _CHECKS[name] = Check(name, check, order, needs_database)


def registered_checks() -> list[Check]:
    return sorted(_CHECKS.values(), key=lambda c: (c.order, c.name))


register_check("settings", check_settings, order=10, needs_database=False)
register_check("database", check_database, order=20, needs_database=False)
register_check("cache", check_cache, order=30, needs_database=False)
register_check("clerk_api", check_clerk_api, order=40, needs_database=False)
register_check("outbox", check_outbox, order=60)
register_check("push", check_push, order=62)


# --- running them --------------------------------------------------------------------------------
def run_all(options: Options | None = None) -> list[Result]:
    """Every check not skipped, in order; database-bound ones are SKIPPED when it is down."""
    options = options or Options()
    results: list[Result] = []
    database_down = False
    for check in registered_checks():
        name = check.name
        if name in options.skip:
            continue
        if check.needs_database and database_down:
            results.append(Result(name, Level.SKIPPED, "not run: the database check failed"))
            continue
        outcome = guarded(name, lambda check=check: check.run(options))
        batch = outcome if isinstance(outcome, list) else [outcome]
        results.extend(batch)
        if name == "database" and batch[0].level == Level.FAILURE:
            database_down = True
    return results


def exit_status(results: Iterable[Result]) -> int:
    return max((int(r.level) for r in results if r.level != Level.SKIPPED), default=0)


def format_age(age: dt.timedelta) -> str:
    """A short, rounded-down age: "40 s", "12 min", "3 h", "2 d"."""
    seconds = max(int(age.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def guarded(name: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except Exception as exc:  # a check that crashes is a failure of what it checks
        return Result(name, Level.FAILURE, f"check crashed: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
