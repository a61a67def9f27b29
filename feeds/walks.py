"""The importer's walks: pages grouped into `ImportRun` rows (writer), and their summary (reader).

`record_page` receives `feeds.signals.page_served` (connected in `FeedsConfig.ready`) and folds
each served page into its walk: offset 0 starts one (abandoning an unfinished one of the same
feed, client and query), the next offset continues it, a short or failed page finishes it, a
whole feed is a one-page walk. At most two queries per page; it never raises. The writes run in
one background thread per process (`CLERK_WALKS_IN_BACKGROUND`, in page order), so the next
request on the connection never waits for them; on PostgreSQL the continuing UPDATE commits
asynchronously (only this bookkeeping can be lost in a crash).
Readers: `latest_complete_walks` (`WalkSummary`), `feeds_whose_latest_walk_failed`, `format_age`.

See docs/operations.md ("Import runs") for the rules, the commit trade-off and page order.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import hashlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, router, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from clerk.health import format_age
from feeds.models import ImportRun

logger = logging.getLogger(__name__)

# Paging is what a walk is made of; the rest of the query says which walk.
_PAGING_PARAMS = frozenset({"limit", "offset"})


def params_key(params: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The walk-defining part of a normalised query, and its digest."""
    kept = {k: v for k, v in (params or {}).items() if k not in _PAGING_PARAMS}
    canonical = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS, default=str)
    return kept, hashlib.sha256(canonical).hexdigest()


def record_page(
    sender: Any = None,
    *,
    feed: str,
    fmt: str,
    offset: int,
    limit: int | None,
    rows: int,
    bytes: int,  # the signal's own keyword
    duration: float,
    outcome: str,
    client: str,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Receiver of `page_served`: fold one served page into its walk (docs/operations.md, "Import
    runs"), in this process's recording thread unless `CLERK_WALKS_IN_BACKGROUND` is off."""
    page = {
        "feed": feed,
        "fmt": fmt,
        "offset": offset,
        "limit": limit,
        "rows": rows,
        "size": bytes,
        "duration": duration,
        "failed": outcome != "ok",
        "client": (client or "")[:128],
        "params": params,
        "now": timezone.now(),
    }
    if settings.CLERK_WALKS_IN_BACKGROUND:
        RECORDER.submit(page)
    else:
        _record_safely(page)


def _record_safely(page: dict[str, Any]) -> None:
    try:
        _record(**page)
    except DatabaseError as exc:
        # Bookkeeping must never cost the importer its page.
        logger.warning("import run not recorded", extra={"feed": page["feed"], "error": type(exc).__name__})


class _Recorder:
    """One thread per process that writes the served pages, one at a time and in the order they
    were served, so a page's bookkeeping never holds up the next request on its connection.

    Started on first use in each process (a forked worker gets its own). At most `BACKLOG`
    pages wait (beyond that a page is dropped with a warning: the database is not keeping up,
    and the feeds must not grow a worker's memory for it); at exit the waiting pages get
    `EXIT_SECONDS` to be written (`stop`). Only this bookkeeping can be lost, never a feed.
    """

    BACKLOG = 10_000
    EXIT_SECONDS = 2.0

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def submit(self, page: dict[str, Any]) -> None:
        self._start()
        if self._queue.qsize() >= self.BACKLOG:
            logger.warning("import run not recorded", extra={"feed": page["feed"], "error": "backlog full"})
            return
        self._queue.put(page)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every page submitted before this call is written; False on timeout."""
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Write the waiting pages, close the thread's database connections and end it (the
        next page starts a new one); False on timeout."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return True
        self._queue.put(_STOP)
        thread.join(timeout)
        return not thread.is_alive()

    def _start(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a forked copy: the parent's pages are the parent's
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="feeds-walks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        checked = 0.0
        while True:
            item = self._queue.get()
            if item is _STOP:
                connections.close_all()  # this thread's own
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                if time.monotonic() - checked > 1.0:
                    # This thread's connection, past its age or broken (as a request's end does;
                    # at most once a second: with health checks it costs a round trip).
                    close_old_connections()
                    checked = time.monotonic()
                _record_safely(item)
            except Exception:  # the thread must outlive any one page
                logger.exception("import run not recorded", extra={"feed": item.get("feed")})


_STOP = object()
RECORDER = _Recorder()
atexit.register(lambda: RECORDER.stop(_Recorder.EXIT_SECONDS))


def _record(*, feed, fmt, offset, limit, rows, size, duration, failed, client, params, now) -> None:
    kept, key = params_key(params)
    outcome = ImportRun.Outcome.FAILED if failed else ImportRun.Outcome.OK
    same_walk = {"feed": feed, "fmt": fmt, "client": client, "limit": limit, "params_key": key}
    page_counts = {
        "pages": 1,
        "object_count": rows,
        "byte_count": size,
        "serving_seconds": duration,
        "next_offset": offset + rows,
    }

    if limit is None:
        ImportRun.objects.create(
            **same_walk,
            params=kept,
            started_at=now - dt.timedelta(seconds=duration),
            last_page_at=now,
            finished_at=now,
            outcome=outcome,
            **page_counts,
        )
        return

    last_page = failed or rows < limit
    if offset == 0:
        ImportRun.objects.filter(outcome=ImportRun.Outcome.RUNNING, **same_walk).update(
            outcome=ImportRun.Outcome.ABANDONED, finished_at=now
        )
        ImportRun.objects.create(
            **same_walk,
            params=kept,
            started_at=now - dt.timedelta(seconds=duration),
            last_page_at=now,
            finished_at=now if last_page else None,
            outcome=outcome if last_page else ImportRun.Outcome.RUNNING,
            **page_counts,
        )
        return

    # The newest running walk expecting exactly this offset (one UPDATE with a subquery).
    finish = (outcome.value, now) if last_page else None
    _continue_walk(same_walk, offset=offset, rows=rows, size=size, duration=duration, now=now, finish=finish)


def _continue_walk(
    same_walk: dict[str, Any],
    *,
    offset: int,
    rows: int,
    size: int,
    duration: float,
    now: dt.datetime,
    finish: tuple[str, dt.datetime] | None,
) -> None:
    """Add a page to the newest running walk of `same_walk` whose next offset is `offset`; with
    `finish` (outcome, time), end it. One UPDATE, written as SQL once per database and shape.

    What the ORM would send, without its cost: building and sending this UPDATE with its
    subquery through the ORM cost several times the statement itself, on every page of every
    walk (figures: bench/README.md, "Figures from the code"). The same statement either way;
    `tests/ops/test_walks.py` runs it on SQLite and PostgreSQL.
    """
    connection = connections[router.db_for_write(ImportRun)]
    asynchronous = _commits_alone(connection)
    sql = _continue_walk_sql(
        connection.alias, connection.vendor, finishes=finish is not None, asynchronous=asynchronous
    )
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [rows, size, duration, offset + rows, adapt(now)]
    if finish is not None:
        params += [finish[0], adapt(finish[1])]
    params += [ImportRun.Outcome.RUNNING.value, offset, *(same_walk[name] for name in _WALK_IDENTITY)]
    with transaction.mark_for_rollback_on_error(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(sql, params)


# The columns that say which walk a page belongs to (with the outcome and the next offset).
_WALK_IDENTITY = ("feed", "fmt", "client", "limit", "params_key")
# A condition that is always true and makes the transaction it runs in commit asynchronously:
# `set_config(…, is_local => true)` is PostgreSQL's `SET LOCAL`, which lasts until the end of the
# current transaction (in autocommit, the statement's own), and `synchronous_commit` is read when
# the transaction commits, so setting it from inside the statement counts. It is volatile, so it
# is evaluated for each row the statement writes, never folded into a one-time check; when no
# row matches, nothing is written and there is nothing to flush.
_ASYNC_COMMIT_SQL = "set_config('synchronous_commit', 'off', true) = 'off'"


@functools.cache
def _continue_walk_sql(alias: str, vendor: str, *, finishes: bool, asynchronous: bool) -> str:
    quote = connections[alias].ops.quote_name
    column = {field.name: quote(field.column) for field in ImportRun._meta.concrete_fields}
    table = quote(ImportRun._meta.db_table)
    sets = [f"{column['pages']} = {column['pages']} + 1"]
    sets += [f"{column[name]} = {column[name]} + %s" for name in ("object_count", "byte_count", "serving_seconds")]
    sets += [f"{column['next_offset']} = %s", f"{column['last_page_at']} = %s"]
    if finishes:
        sets += [f"{column['outcome']} = %s", f"{column['finished_at']} = %s"]
    matches = " AND ".join(f"{column[name]} = %s" for name in ("outcome", "next_offset", *_WALK_IDENTITY))
    newest = f"ORDER BY {column['started_at']} DESC, {column['id']} DESC LIMIT 1"
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} "
        f"WHERE {column['id']} = (SELECT {column['id']} FROM {table} WHERE {matches} {newest})"
    )
    return f"{sql} AND {_ASYNC_COMMIT_SQL}" if asynchronous else sql


def _commits_alone(connection) -> bool:
    """Whether a write may skip the WAL flush wait: on PostgreSQL, outside a caller's `atomic`."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


# --- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WalkSummary:
    feed: str
    finished_at: dt.datetime
    objects: int
    pages: int
    bytes: int
    wall_seconds: float
    limit: int | None

    def describe(self, *, now: dt.datetime | None = None) -> str:
        """ "products last fetched by Clerk 3 h ago, 1,000,214 objects"."""
        age = (now or timezone.now()) - self.finished_at
        return f"{self.feed} last fetched by Clerk {format_age(age)} ago, {self.objects:,} objects"


def latest_complete_walks() -> dict[str, WalkSummary]:
    """The newest complete walk of each feed that was ever walked, by feed name (one query)."""
    newest_ok = (
        ImportRun.objects.filter(feed=OuterRef("feed"), outcome=ImportRun.Outcome.OK)
        .order_by("-finished_at", "-id")
        .values("pk")[:1]
    )
    runs = ImportRun.objects.filter(outcome=ImportRun.Outcome.OK, pk=Subquery(newest_ok)).order_by("feed")
    return {
        run.feed: WalkSummary(
            feed=run.feed,
            finished_at=run.finished_at,
            objects=run.object_count,
            pages=run.pages,
            bytes=run.byte_count,
            wall_seconds=run.wall_time.total_seconds(),
            limit=run.limit,
        )
        for run in runs
    }


def feeds_whose_latest_walk_failed() -> list[str]:
    """Feeds whose newest finished walk failed (one query), sorted by name."""
    finished = ImportRun.objects.exclude(outcome=ImportRun.Outcome.RUNNING)
    newest = finished.filter(feed=OuterRef("feed")).order_by("-started_at", "-id").values("pk")[:1]
    failed = finished.filter(pk=Subquery(newest), outcome=ImportRun.Outcome.FAILED)
    return sorted(failed.values_list("feed", flat=True))
