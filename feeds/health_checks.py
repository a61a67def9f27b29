"""The operational checks behind `manage.py clerk_check`: is this deployment able to serve Clerk?

Each check is a small function returning a `Result(name, level, message, details)`. Levels are
ordered so that the worst one is the command's exit status: OK 0, WARNING 1, FAILURE 2.
SKIPPED results (a check that needs the database when the database is down) do not count.

A check never raises: an unexpected exception is itself a FAILURE, named by its type. Messages
never carry a token, a key, an email or a name (they end up in monitoring systems).
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

import orjson
from django.conf import settings
from django.core import checks as django_checks
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from clerkfeeds.clerk_api import ClerkRefused, ClerkUnreachable, get_client
from feeds import rank_index, walks
from feeds.params import FeedParams
from feeds.registry import FEEDS, SINGLE_FEED
from feeds.rules import ATTRIBUTE_NAME_RE, feed_errors
from feeds.stream import feed_chunks
from gdpr.models import ClerkDeletion, Status
from gdpr.sweep import last_sweep, unreconciled_settings
from shop.models import validate_translations


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


# --- feeds ---------------------------------------------------------------------------------------
def sample_objects(name: str, *, size: int) -> list[dict[str, Any]]:
    """The first page of feed `name` (`size` objects), exactly as the importer would get it."""
    return orjson.loads(b"".join(feed_chunks(name, params=FeedParams(limit=size))))


def stored_data_problems(name: str, objects: list[dict[str, Any]]) -> list[str]:
    """Stored values behind `objects` that the feed had to leave out, and why.

    A feed leaves out an extra attribute Clerk would refuse (a name outside
    `^[A-Za-z0-9_]+$`, a value of no Clerk type) rather than break the whole feed, so such a row
    never shows in the objects themselves: it is found here, by comparing with what is stored.
    Malformed translations (the feed falls back to the base text) are reported too.
    """
    feed = FEEDS[name]
    stored_fields = {f.name for f in feed.model._meta.fields} & {"attributes", "translations"}
    if not stored_fields or not objects:
        return []
    by_id = {obj["id"]: obj for obj in objects}
    rows = feed.model._default_manager.filter(pk__in=list(by_id)).order_by("pk").values("pk", *stored_fields)
    problems = []
    for row in rows:
        obj = by_id[row["pk"]]
        for attribute in row.get("attributes") or {}:
            if attribute in obj or attribute in feed.standard_attributes:
                continue
            if not isinstance(attribute, str) or not ATTRIBUTE_NAME_RE.fullmatch(attribute):
                why = "its name is not made of A-Z, a-z, 0-9 and _"
            else:
                why = "its value is of no type Clerk takes"
            problems.append(f"{name} id {row['pk']}: attribute {attribute!r} left out of the feed: {why}")
        if "translations" in row:
            try:
                validate_translations(row["translations"])
            except ValidationError as exc:
                problems.append(f"{name} id {row['pk']}: translations malformed: {'; '.join(exc.messages)}")
    return problems


def check_feeds(options: Options) -> list[Result]:
    """The first page of every feed passes Clerk's rules (`feeds.rules`), one result per feed."""
    languages = tuple(settings.CLERK_LANGUAGES)
    results = []
    for name in FEEDS:
        results.append(_guarded(f"feed:{name}", lambda name=name: _check_one_feed(name, options.sample, languages)))
    return results


def _check_one_feed(name: str, size: int, languages: tuple[str, ...]) -> Result:
    check = f"feed:{name}"
    objects = sample_objects(name, size=size)
    errors = feed_errors(name, objects, languages=languages)
    if errors:
        return Result(
            check,
            Level.FAILURE,
            f"{len(errors)} violation(s) of Clerk's rules in the first {len(objects)} object(s)",
            tuple(errors),
        )
    if not objects:
        if name == "products":
            return Result(check, Level.WARNING, "the products feed is empty: Clerk would delete every product it holds")
        return Result(check, Level.OK, "empty")
    problems = stored_data_problems(name, objects)
    if problems:
        return Result(
            check,
            Level.WARNING,
            f"first {len(objects)} object(s) valid, but {len(problems)} stored value(s) break Clerk's rules",
            tuple(problems),
        )
    return Result(check, Level.OK, f"first {len(objects)} object(s) valid")


# --- GDPR outbox -------------------------------------------------------------------------------
def check_outbox(options: Options) -> Result:
    """Deletions for Clerk are delivered: none refused for good, none waiting too long."""
    now = timezone.now()
    failed = ClerkDeletion.objects.filter(status=Status.FAILED).count()
    pending = ClerkDeletion.objects.filter(status=Status.PENDING)
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
    waiting = f"{count} deletion(s) waiting, the oldest for {walks.format_age(age)}"
    if age >= dt.timedelta(minutes=options.outbox_fail_minutes):
        return Result(
            "outbox", Level.FAILURE, f"outbox stuck: {waiting}: is the clerk_sync worker running, is Clerk reachable?"
        )
    if age >= dt.timedelta(minutes=options.outbox_warn_minutes):
        return Result("outbox", Level.WARNING, f"outbox slow: {waiting}: is the clerk_sync worker running?")
    if retried:
        return Result("outbox", Level.WARNING, f"{waiting}; {retried} retried {options.outbox_warn_attempts}+ times")
    return Result("outbox", Level.OK, waiting)


# --- GDPR reconciliation -----------------------------------------------------------------------
SWEEP_FIX = "run manage.py gdpr_sweep, or restart the clerk_sync worker"


def check_sweep(options: Options) -> Result:
    """Clerk's copy was reconciled with the policy under the running settings, and lately
    (`gdpr.sweep`): until then, what a setting took out of the feeds may still be at Clerk."""
    mark = last_sweep()
    if mark is None:
        return Result(
            "gdpr_sweep", Level.FAILURE, f"Clerk's copy was never reconciled with the GDPR policy: {SWEEP_FIX}"
        )
    changed = unreconciled_settings(mark)
    if changed:
        return Result(
            "gdpr_sweep",
            Level.FAILURE,
            f"the feeds run under settings Clerk's copy was not reconciled with: {SWEEP_FIX}",
            tuple(changed),
        )
    age = timezone.now() - mark.swept_at
    if age > dt.timedelta(hours=options.sweep_max_age_hours):
        return Result(
            "gdpr_sweep",
            Level.FAILURE,
            f"no reconciliation with the GDPR policy for {walks.format_age(age)} "
            f"(over {options.sweep_max_age_hours} h): {SWEEP_FIX}",
        )
    return Result(
        "gdpr_sweep",
        Level.OK,
        f"Clerk's copy reconciled {walks.format_age(age)} ago under the running settings "
        f"({mark.purpose}, {mark.recent_days} days)",
    )


# --- import runs -------------------------------------------------------------------------------
def check_imports(options: Options) -> Result:
    """What Clerk fetched lately: the newest complete walk per feed (information, and staleness)."""
    now = timezone.now()
    latest = walks.latest_complete_walks()
    failed = walks.feeds_whose_latest_walk_failed()
    details = tuple(latest[name].describe(now=now) for name in [*FEEDS, SINGLE_FEED] if name in latest)
    details += tuple(f"{name}: latest walk failed" for name in failed)
    max_age = dt.timedelta(hours=options.import_max_age_hours)
    stale = [name for name, walk in latest.items() if now - walk.finished_at > max_age]
    problems = []
    if stale:
        problems.append(f"no complete import for {options.import_max_age_hours} h: {', '.join(stale)}")
    if failed:
        problems.append(f"latest walk failed: {', '.join(failed)}")
    if problems:
        return Result("imports", Level.WARNING, "; ".join(problems), details)
    if not latest:
        return Result("imports", Level.OK, "no complete import by Clerk recorded yet")
    return Result("imports", Level.OK, f"{len(latest)} feed(s) imported by Clerk", details)


# --- rank index --------------------------------------------------------------------------------
def check_rank_index(options: Options) -> Result:
    """The counts behind exact cold seeks match the catalogue's rows (see `feeds.rank_index`):
    counts that are too low would make a cold page skip rows, so drift is a failure."""
    problems: list[str] = []
    checked: list[str] = []
    for model in rank_index.counted_models():
        table = model._meta.db_table
        armed = rank_index.armed(model)
        if armed is None:
            continue
        if not armed:
            problems.append(f"{table}: counting triggers missing or disabled (run manage.py migrate)")
            continue
        drift = rank_index.count_drift(model) or []
        if drift:
            problems.append(f"{table}: {len(drift)} bucket(s) drifted from the rows")
        checked.append(table)
    if problems:
        return Result(
            "rank_index",
            Level.FAILURE,
            "rank index out of step with the catalogue: run manage.py rank_index --rebuild",
            tuple(problems),
        )
    if not checked:
        return Result("rank_index", Level.OK, "not used on this database: cold seeks count keys")
    return Result("rank_index", Level.OK, f"counts match the rows of {', '.join(checked)}")


# --- running them --------------------------------------------------------------------------------
CHECKS: dict[str, Callable[[Options], Result | list[Result]]] = {
    "settings": check_settings,
    "database": check_database,
    "cache": check_cache,
    "clerk_api": check_clerk_api,
    "feeds": check_feeds,
    "outbox": check_outbox,
    "gdpr_sweep": check_sweep,
    "imports": check_imports,
    "rank_index": check_rank_index,
}
NEEDS_DATABASE = {"feeds", "outbox", "gdpr_sweep", "imports", "rank_index"}


def run_all(options: Options | None = None) -> list[Result]:
    """Every check not skipped, in order; database-bound ones are SKIPPED when it is down."""
    options = options or Options()
    results: list[Result] = []
    database_down = False
    for name, check in CHECKS.items():
        if name in options.skip:
            continue
        if name in NEEDS_DATABASE and database_down:
            results.append(Result(name, Level.SKIPPED, "not run: the database check failed"))
            continue
        outcome = _guarded(name, lambda check=check: check(options))
        batch = outcome if isinstance(outcome, list) else [outcome]
        results.extend(batch)
        if name == "database" and batch[0].level == Level.FAILURE:
            database_down = True
    return results


def exit_status(results: Iterable[Result]) -> int:
    return max((int(r.level) for r in results if r.level != Level.SKIPPED), default=0)


def _guarded(name: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except Exception as exc:  # a check that crashes is a failure of what it checks
        return Result(name, Level.FAILURE, f"check crashed: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
