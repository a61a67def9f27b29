"""The importer's walks: pages grouped into `ImportRun` rows (writer), and their summary (reader).

`record_page` receives `feeds.signals.page_served` (connected in `FeedsConfig.ready`). It is on
the importer's path, so it costs at most two queries per page and never raises:

* a whole feed without `limit`: one INSERT of a finished run;
* offset 0: the walk begins; an unfinished walk of the same feed, client and query is marked
  abandoned (UPDATE) and a new run is written (INSERT), finished at once when the page is
  already the last;
* any other offset: one UPDATE of the running walk whose next offset is this one, adding the
  page's counts; a short page (fewer rows than `limit`, the empty page included) finishes it
  with outcome ok, a failed page with outcome failed. A page that continues no known walk (a
  retry of an earlier page, the trailing empty page after a short one) changes nothing.

`latest_complete_walks` is the summary ops read ("products last fetched by Clerk 3 h ago,
1,000,214 objects").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import DatabaseError
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

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
    bytes: int,  # noqa: A002 - the signal's own keyword
    duration: float,
    outcome: str,
    client: str,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Receiver of `page_served`: fold one served page into its walk (see the module doc)."""
    try:
        _record(
            feed=feed,
            fmt=fmt,
            offset=offset,
            limit=limit,
            rows=rows,
            size=bytes,
            duration=duration,
            failed=outcome != "ok",
            client=(client or "")[:128],
            params=params,
        )
    except DatabaseError as exc:
        # Bookkeeping must never cost the importer its page.
        logger.warning("import run not recorded", extra={"feed": feed, "error": type(exc).__name__})


def _record(*, feed, fmt, offset, limit, rows, size, duration, failed, client, params) -> None:
    now = timezone.now()
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
            **same_walk, params=kept, started_at=now - dt.timedelta(seconds=duration),
            last_page_at=now, finished_at=now, outcome=outcome, **page_counts,
        )
        return

    last_page = failed or rows < limit
    if offset == 0:
        ImportRun.objects.filter(outcome=ImportRun.Outcome.RUNNING, **same_walk).update(
            outcome=ImportRun.Outcome.ABANDONED, finished_at=now
        )
        ImportRun.objects.create(
            **same_walk, params=kept, started_at=now - dt.timedelta(seconds=duration), last_page_at=now,
            finished_at=now if last_page else None,
            outcome=outcome if last_page else ImportRun.Outcome.RUNNING,
            **page_counts,
        )
        return

    # The newest running walk expecting exactly this offset (one UPDATE with a subquery).
    walk = (
        ImportRun.objects.filter(outcome=ImportRun.Outcome.RUNNING, next_offset=offset, **same_walk)
        .order_by("-started_at", "-id")
        .values("pk")[:1]
    )
    changes: dict[str, Any] = {
        "pages": F("pages") + 1,
        "object_count": F("object_count") + rows,
        "byte_count": F("byte_count") + size,
        "serving_seconds": F("serving_seconds") + duration,
        "next_offset": offset + rows,
        "last_page_at": now,
    }
    if last_page:
        changes.update(outcome=outcome, finished_at=now)
    ImportRun.objects.filter(pk=Subquery(walk)).update(**changes)


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
        """"products last fetched by Clerk 3 h ago, 1,000,214 objects"."""
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


def format_age(age: dt.timedelta) -> str:
    """A short, rounded-down age: "40 s", "12 min", "3 h", "2 d"."""
    seconds = max(int(age.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
