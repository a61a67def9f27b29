"""Bounded growth of the import-run record (`feeds.models.ImportRun`, one row per importer walk).

`prune_import_runs(older_than=90 days)` deletes runs whose last page and end are older than the
cutoff, in key ranges (`clerk.retention.key_ranges`), each DELETE repeating the age conditions.
It keeps, whatever their age, the newest complete and the newest finished walk of each feed
(what `clerk_check` reports), and every run with a page within `MIN_AGE`.
See docs/operations.md ("Retention").
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
