"""Keyset pagination behind Clerk's limit/offset walk.

Clerk's importer walks `offset=0, L, 2L, …` until it gets `[]`. Served with SQL `OFFSET`, page
k costs a scan of k·L rows, so a full crawl is quadratic; and a row deleted mid-walk shifts
every later row one place down, so the importer skips one — and Clerk then deletes the object
it never saw. So pages are read by key instead: `WHERE pk > P ORDER BY pk LIMIT L`.

After serving a page that ended at primary key P, the pager remembers P in Django's cache
under (feed, the walk's query without offset, client, next offset = offset + L). The next
page of the same walk finds it and continues from P: deep pages cost what the first costs,
and the walk stays exact when rows are added or deleted during it (every row that exists for
the whole walk is served exactly once). When the cursor is unknown (cold start, evicted
cache, another limit, a jump), the pager seeks: one index-only query for the primary key at
position offset - 1, then the same keyset read. That fallback is exact for data that does
not change while the walk runs. Past the end the page is empty: `[]`.

Whole feeds (no `limit`) are read in keyset batches of `BATCH_SIZE` rows, so memory stays
constant whatever the feed's size; a page larger than a batch is read as several batches.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

logger = logging.getLogger(__name__)

# Rows per query: large enough to amortise a round trip, small enough for constant memory.
BATCH_SIZE = 1000
# An importer walk takes minutes; an hour-old cursor belongs to a walk that is over.
CURSOR_TTL_SECONDS = 3600
_CURSOR_PREFIX = "feeds:cursor:"


class Cursors:
    """Where the pages of one walk ended: next offset -> last primary key, in Django's cache.

    A cache failure only costs speed (the pager seeks instead), never a wrong page.
    """

    def __init__(self, *, feed: str, walk: dict[str, Any], client: str):
        self._base = "\x1f".join(
            [feed, *(f"{name}={walk[name]}" for name in sorted(walk)), f"client={client}"]
        )

    def key(self, offset: int) -> str:
        digest = hashlib.sha256(f"{self._base}\x1foffset={offset}".encode()).hexdigest()
        return _CURSOR_PREFIX + digest

    def get(self, offset: int) -> Any | None:
        try:
            return cache.get(self.key(offset))
        except Exception:  # noqa: BLE001 - the cache is an accelerator, never a dependency
            logger.warning("pagination cursor cache unavailable", exc_info=True)
            return None

    def put(self, offset: int, last_pk: Any) -> None:
        try:
            cache.set(self.key(offset), last_pk, CURSOR_TTL_SECONDS)
        except Exception:  # noqa: BLE001
            logger.warning("pagination cursor cache unavailable", exc_info=True)


@dataclass(frozen=True)
class Start:
    """Where a page starts: after primary key `after` (None: at the first row), or past the end.

    `via` says how it was found: "first" (offset 0 or a whole feed), "cursor" or "seek".
    """

    after: Any | None
    past_end: bool
    via: str


def page_start(queryset: QuerySet, *, pk_name: str, offset: int, cursors: Cursors | None) -> Start:
    """Locate the row before position `offset` of `queryset` (ordered by `pk_name`)."""
    if offset == 0:
        return Start(after=None, past_end=False, via="first")
    if cursors is not None:
        after = cursors.get(offset)
        if after is not None:
            return Start(after=after, past_end=False, via="cursor")
    # Index-only: the primary keys before the page are counted, their rows never read.
    before = list(queryset.order_by(pk_name).values_list(pk_name, flat=True)[offset - 1 : offset])
    if not before:
        return Start(after=None, past_end=True, via="seek")
    return Start(after=before[0], past_end=False, via="seek")


def keyset_batches(
    queryset: QuerySet,
    *,
    pk_name: str,
    columns: tuple[str, ...],
    after: Any | None,
    limit: int | None,
    batch_size: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Rows of `queryset` after primary key `after`, in key order, as `values()` batches.

    At most `limit` rows in all (None: to the end). Each batch is one query,
    `WHERE pk > last ORDER BY pk LIMIT n`; no batch is ever empty.
    """
    batch_size = batch_size or BATCH_SIZE
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        rows = queryset if after is None else queryset.filter(**{f"{pk_name}__gt": after})
        batch = list(rows.order_by(pk_name).values(*columns)[:size])
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return  # a short batch is the end: spare the empty query
        after = batch[-1][pk_name]
        if remaining is not None:
            remaining -= len(batch)
