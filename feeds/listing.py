"""Positions in the personal feeds (customers, orders): the `FeedListing` rows, one home.

    members_after(feed, after, size)   the listed ids after `after`, ascending: a page's bounds
    key_at(feed, position)             the id at a 0-based position (listed or not), or None
    positions(feed)                    (how many positions, the highest id holding one)
    add(feed, ids)                     list `ids` (again); one statement, idempotent
    unlist(feed, ids)                  `ids` left the feed: they keep their positions
    refresh(feed, eligible_ids)        list who is eligible, unlist who is not, drop old rows

A row holds its position from the moment it is listed until `LONGEST_WALK` after it was
unlisted, so positions only grow during a walk; `feeds.pagination` serves each page's listed
range through the feed's live query. See docs/feeds.md ("Exact cold pages of personal feeds").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from feeds.models import FeedListing
from feeds.rank_index import counted_seek

_ADD_BATCH = 10_000  # ids per statement in `refresh`


def _alias() -> str:
    return router.db_for_write(FeedListing)


def members_after(feed: str, after: int | None, size: int) -> list[int]:
    """Up to `size` listed ids of `feed` above `after` (None: from the first), ascending."""
    rows = FeedListing.objects.using(_alias()).filter(feed=feed, listed=True)
    if after is not None:
        rows = rows.filter(object_id__gt=after)
    return list(rows.order_by("object_id").values_list("object_id", flat=True)[:size])


# The counting triggers of migration 0004 (all must be enabled for a counted seek).
TRIGGERS = ("feeds_listing_insert", "feeds_listing_delete", "feeds_listing_truncate")


def _counted_key_at(feed: str, position: int) -> tuple[bool, int | None]:
    """(answered, key) from the bucket counts on PostgreSQL, as `feeds.rank_index` does."""
    connection = connections[_alias()]
    if connection.vendor != "postgresql":
        return False, None
    table = FeedListing._meta.db_table
    armed, bucket, key = counted_seek(
        connection,
        table=table,
        counted=f"{table}:{feed}",
        triggers=TRIGGERS,
        position=position,
        key="object_id",
        rows_filter="feed = %(feed)s AND ",
        params={"feed": feed},
    )
    if not armed or (bucket is not None and key is None):  # disabled, or counts that drifted
        return False, None
    return True, key


def key_at(feed: str, position: int) -> int | None:
    """The id at 0-based `position` of `feed`'s positions (listed or not), or None past them.

    On PostgreSQL one statement over the per-bucket counts (migration 0004) and one bucket's
    ids; elsewhere an index-only scan of the positions before it (`feedlisting_row`)."""
    if position < 0:
        raise ValueError("position must be 0 or more")
    answered, key = _counted_key_at(feed, position)
    if answered:
        return key
    rows = FeedListing.objects.using(_alias()).filter(feed=feed).order_by("object_id")
    found = list(rows.values_list("object_id", flat=True)[position : position + 1])
    return found[0] if found else None


def positions(feed: str) -> tuple[int, int | None]:
    """How many positions `feed` has, and the highest id holding one (None: none)."""
    connection = connections[_alias()]
    name = FeedListing._meta.db_table
    table = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The counts while their triggers are enabled (else NULL: count the rows).
            cursor.execute(
                "SELECT (SELECT sum(row_count) FROM feeds_rankbucket WHERE table_name = %s AND "
                "(SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = ANY (%s) "
                f"AND tgenabled <> 'D') = {len(TRIGGERS)}), (SELECT max(object_id) FROM {table} WHERE feed = %s)",
                [f"{name}:{feed}", name, list(TRIGGERS), feed],
            )
            count, highest = cursor.fetchone()
            if count is not None or highest is None:
                return int(count or 0), highest
        cursor.execute(f"SELECT count(*), max(object_id) FROM {table} WHERE feed = %s", [feed])
        count, highest = cursor.fetchone()
    return count, highest


def add(feed: str, ids: Iterable[int]) -> None:
    """List `ids` of `feed`: new rows take a position, unlisted ones are listed again (their
    position kept). One statement; committed on return in autocommit. Raises on failure."""
    ids = sorted(set(ids))
    if not ids:
        return
    connection = connections[_alias()]
    table = connection.ops.quote_name(FeedListing._meta.db_table)
    upsert = f"ON CONFLICT (feed, object_id) DO UPDATE SET listed = true, left_at = NULL WHERE NOT {table}.listed"
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} (feed, object_id, listed) SELECT %s, u.id, true "
            f"FROM unnest(%s::bigint[]) AS u(id) ORDER BY u.id {upsert}"
        )
        params: list = [feed, ids]
    elif connection.vendor == "sqlite":
        sql = (
            f"INSERT INTO {table} (feed, object_id, listed) SELECT %s, value, 1 FROM json_each(%s) WHERE true {upsert}"
        )
        params = [feed, orjson.dumps(ids).decode()]
    else:  # any other database: Django's portable form
        with transaction.atomic(using=connection.alias):
            rows = FeedListing.objects.using(connection.alias).filter(feed=feed)
            rows.filter(object_id__in=ids, listed=False).update(listed=True, left_at=None)
            known = set(rows.filter(object_id__in=ids).values_list("object_id", flat=True))
            FeedListing.objects.using(connection.alias).bulk_create(
                [FeedListing(feed=feed, object_id=pk) for pk in ids if pk not in known]
            )
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def unlist(feed: str, ids: Iterable[int], *, now: dt.datetime | None = None) -> None:
    """`ids` left `feed`: they bound no page from now on and keep their positions until
    `refresh` removes them, `LONGEST_WALK` later. Ids not listed are left alone."""
    ids = sorted(set(ids))
    now = now or timezone.now()
    rows = FeedListing.objects.using(_alias()).filter(feed=feed, listed=True)
    for start in range(0, len(ids), _ADD_BATCH):
        rows.filter(object_id__in=ids[start : start + _ADD_BATCH]).update(listed=False, left_at=now)


def follow_membership(*, exits: Any, entries: Any, now: dt.datetime, **kwargs: Any) -> None:
    """Receiver of `gdpr.membership.feed_membership_changed`: list what entered the personal
    feeds and unlist what left them, in the write's transaction."""
    for feed in ("customers", "orders"):
        unlist(feed, getattr(exits, feed), now=now)
        add(feed, getattr(entries, feed))


def refresh(
    feed: str, eligible_ids: QuerySet, *, now: dt.datetime | None = None, keep: dt.timedelta | None = None
) -> dict[str, int]:
    """Bring `feed`'s listing in line with `eligible_ids` (a `values_list(pk, flat=True)` of
    the feed's rows now): list every eligible id, unlist every listed id that is not, and remove
    the rows unlisted more than `keep` (default `LONGEST_WALK`) ago. Returns the counts.

    Only an accelerator: a row the pages meet unlisted is listed on the way (`add`)."""
    from feeds.pagination import LONGEST_WALK

    now = now or timezone.now()
    keep = LONGEST_WALK if keep is None else keep
    alias = _alias()
    rows = FeedListing.objects.using(alias).filter(feed=feed)
    eligible = set(eligible_ids)
    listed = set(rows.filter(listed=True).values_list("object_id", flat=True))
    new = sorted(eligible - listed)
    for start in range(0, len(new), _ADD_BATCH):
        add(feed, new[start : start + _ADD_BATCH])
    gone = sorted(listed - eligible)
    for start in range(0, len(gone), _ADD_BATCH):
        rows.filter(object_id__in=gone[start : start + _ADD_BATCH], listed=True).update(listed=False, left_at=now)
    removed, _ = rows.filter(listed=False, left_at__lt=now - keep).delete()
    return {"listed": len(new), "unlisted": len(gone), "removed": removed}


def refresh_all(*, now: dt.datetime | None = None) -> dict[str, dict[str, int]]:
    """`refresh` every personal feed from its live query now (the reconciliation runs it)."""
    from feeds.registry import FEEDS

    now = now or timezone.now()
    report = {}
    for name, cls in FEEDS.items():
        if cls.personal:
            rows = cls(now=now).selection().values_list(cls.pk_name(), flat=True)
            report[name] = refresh(name, rows, now=now)
    return report
