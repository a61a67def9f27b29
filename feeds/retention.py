"""Bounded growth of the import-run record (`feeds.models.ImportRun`, one row per importer walk).

A run older than `older_than` (default 90 days) is deleted, except what ops still read:

* the newest complete walk of each feed, whatever its age: `clerk_check` reports it ("products
  last fetched by Clerk 3 h ago") and warns when it grows old; deleting it would turn "stale
  for 95 days" into "never imported";
* the newest finished walk of each feed, whatever its age: `clerk_check` warns when it failed.

Both use the orderings of `feeds.walks.latest_complete_walks` and
`feeds.walks.feeds_whose_latest_walk_failed`, so their answers are the same before and after.

A run is old when its last page and its end (if any) are older than the cutoff. A `running` run
that old is a walk the importer gave up on (no page for days); `MIN_AGE` keeps every run with a
page in the last day, running or not. Rows go in primary-key ranges of at most `batch_size`
rows (`clerk.retention.key_ranges`), each DELETE repeating the age conditions, so a run that
received a page meanwhile stays.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q, QuerySet

from clerk.retention import key_ranges
from feeds.models import ImportRun

logger = logging.getLogger(__name__)

MIN_AGE = dt.timedelta(days=1)
DEFAULT_OLDER_THAN = dt.timedelta(days=90)
BATCH_SIZE = 5000


def prune_import_runs(
    *,
    now: dt.datetime,
    older_than: dt.timedelta = DEFAULT_OLDER_THAN,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Delete (or, with `dry_run`, count) old import runs; returns how many.

    Raises `ValueError` for an age below `MIN_AGE` or a batch size below 1.
    """
    if older_than < MIN_AGE:
        raise ValueError(f"older_than must be at least {MIN_AGE}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    doomed = old_runs(now - older_than).exclude(pk__in=runs_ops_read())
    if dry_run:
        return doomed.count()
    deleted = 0
    for lo, hi in key_ranges(doomed, batch_size):
        count, _ = doomed.filter(pk__gt=lo, pk__lte=hi).delete()
        deleted += count
    logger.info("import runs pruned", extra={"deleted": deleted})
    return deleted


def old_runs(cutoff: dt.datetime) -> QuerySet[ImportRun]:
    """Runs with no page and no end since `cutoff` (running ones included)."""
    return ImportRun.objects.filter(
        Q(finished_at__isnull=True) | Q(finished_at__lt=cutoff),
        last_page_at__lt=cutoff,
        started_at__lt=cutoff,
    )


def runs_ops_read() -> list[int]:
    """Ids of the newest complete walk and the newest finished walk of each feed (2 queries per
    feed, on the `importrun_latest` index; there are a handful of feeds)."""
    keep: list[int] = []
    feeds = ImportRun.objects.order_by("feed").values_list("feed", flat=True).distinct()
    for feed in list(feeds):
        of_feed = ImportRun.objects.filter(feed=feed)
        complete = of_feed.filter(outcome=ImportRun.Outcome.OK).order_by("-finished_at", "-id")
        finished = of_feed.exclude(outcome=ImportRun.Outcome.RUNNING).order_by("-started_at", "-id")
        for newest in (complete, finished):
            pk = newest.values_list("pk", flat=True).first()
            if pk is not None:
                keep.append(pk)
    return keep
