"""Keyset pagination behind Clerk's limit/offset walk.

Clerk's importer walks `offset=0, L, 2L, …` until it gets `[]`. Served with SQL `OFFSET`, page
k costs a scan of k·L rows, so a full crawl is quadratic; and a row deleted mid-walk shifts
every later row one place down, so the importer skips one — and Clerk then deletes the object
it never saw. So pages are read by key instead: `WHERE pk > P ORDER BY pk LIMIT L`.

The request names no walk: two walks with the same feed, query and client (a retry, the walk
just before, a second importer with the same token) send identical requests. So the rule is:
when in doubt, a page starts EARLIER, never later. A row served twice is harmless (Clerk
upserts by id); a row skipped is deleted at Clerk.

Cursors. After serving a page that ended at primary key P, the pager keeps P as the cursor of
the next offset O' = O + L, in Django's cache, under the walk's identity (feed, the walk's query
without offset, client), and counts one walk waiting there; serving the page at O' (or the empty
page past the end) releases one waiting walk, and a cursor nobody waits on is dropped. The next
page of the walk continues after the cursor. So an identity's cache entry holds only the cursors
of walks under way: a walk that ended (its last page served) leaves nothing behind, and the next
walk of the identity (the importer's next run, minutes later) is exact again instead of being
pulled back to the previous walk's positions.

Walks under way at the same time share the identity's cursors, so a cursor merges by MINIMUM:
a write stores min(stored, P), read and written under a short per-identity lock (`cache.add`),
so two writes at the same instant cannot lose the lower value; each walk's own write is pending
until its own next page has been served, so its read always includes it. Another walk can pull
a walk back (duplicates), never push it forward. A cursor expires `CURSOR_TTL_SECONDS` after its
last write (an abandoned walk's waits are never released). When the write fails (cache error,
lock never obtained) the pager deletes the identity's entry, best effort, and remembers P in this
process for the TTL; a read takes the minimum of the cache and that memory. Primary keys are
integers (`shop.models.FeedObject.id`), so Python's `min` is the database's order.

Cold seek. With no cursor (cold start, eviction, expiry, another worker's per-process cache,
a jump, a broken cache) the pager counts positions in the feed as it is now, with one query for
the key at a position, then the same keyset read. The query is index-only (O(offset)), or, for
a whole catalogue table on PostgreSQL, answered by its rank index (`feeds.rank_index`: counts
per bucket of ids kept by triggers, about what the first page costs at any depth). A walk's pages can only
skip when rows LEFT the feed, behind the walk, since the walk began (not merely since its
previous page: cursor pages keep the walk exact but do not restore positions); rows added only
ever cause duplicates. How far to seek therefore depends on how rows leave the feed:

* Exact (no overlap): on a catalogue feed (products, categories, pages:
  `Feed.rows_leave_only_by_deletion`) without `modified_after`, rows leave only by deletion,
  and every deletion is queued in the GDPR outbox in the same transaction. The page starts at
  position O when no deletion of that type is queued (or may have been absorbed by a pending
  one) within `LONGEST_WALK` (6 hours, far longer than a walk, so a row that left earlier left
  before the walk began): `clerk.outbox.deletion_queued_since`, one indexed query, asked AFTER
  the seek, so a deletion that commits between the two is seen, never missed.
* With margin: otherwise (customers and orders, which also leave the GDPR window with time or
  by withdrawal or erasure; any `modified_after` page, whose cutoff moves with time; a
  catalogue with a recent deletion, which then seeks a second time) the page starts up to
  ⌈O/10⌉ rows early, at position O - 1 - ⌈O/10⌉ (from the first row when that is negative).

A seek with margin skips nothing as long as the drift (rows that left behind the walk, plus
duplicates the walk was served) is at most ⌈O/10⌉, i.e. the feed now holds at least
O - ⌈O/10⌉ rows up to the last row the walk was served. The margin grows with O, not a fixed
number of rows, because a cold page leaves the walk exactly its margin behind its offset: with
a fixed margin, consecutive cold pages (a dead or per-process cache) would have no slack at
all; with ⌈O/10⌉ they have about L/10 rows of slack per page, and a cold page after a run of
cursor hits from O' about (O - O')/10. The price is up to ⌈O/10⌉ duplicates per such page.
Past the end the page is `[]`; a cold page with margin just past the end may repeat the last
rows: the walk then ends at its next page (by cursor), or, with no cursors at all, once
O - 1 - ⌈O/10⌉ passes the end (about O/9 rows later).

So pages overlap only on a cold page with margin; with unchanged data they never overlap or
skip, except the cold pages of customers and orders (their set moves with time, unseen) and of
`modified_after` walks, which overlap by their margin.

Guarantee. A row in the feed for the whole walk is served AT LEAST once, unless (a) a cold page
with margin met more drift than its margin (above); (b) the walk paused longer than the TTL (its
cursor expired) or its cursor was evicted, and another walk of the same identity wrote one at
the same offset, ending later, before this walk read it; (c) a write failed, its delete failed
too, and the next page was served by another process; (d) a cache call stalled longer than
`LOCK_SECONDS`; (e) before an exact cold page, a catalogue row left behind the walk after the
walk (or a walk of its identity whose cursor it followed) began but more than `LONGEST_WALK`
before that page, or left without the outbox knowing (raw SQL, a changed primary key); or (f)
two walks of the identity waited at one offset, a page of one was served twice (a retry) and so
released the other's wait, and a third walk then wrote a later cursor there before the other read
it (all three within seconds; without the third walk the other only seeks cold).
A walk that finds all its cursors, with no other walk of its identity under way, serves every
such row EXACTLY once (its pages are disjoint, increasing key ranges), whatever is added or
deleted meanwhile, and so do back-to-back walks; with unchanged data and a fresh cache, a walk is
exact, and so is a catalogue walk (without `modified_after`) with no cursors at all. A page
served twice (a retry after the client gave up) leaves one extra wait, which may pull a walk of
the identity within the TTL back (duplicates).

Whole feeds (no `limit`) are read in keyset batches of `BATCH_SIZE` rows, so memory stays
constant whatever the feed's size; a page larger than a batch is read as several batches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from feeds import rank_index

logger = logging.getLogger(__name__)

# Rows per query: large enough to amortise a round trip, small enough for constant memory.
BATCH_SIZE = 1000
# An importer's pages come seconds apart: a walk paused this long has its cursor expire and
# continues by cold seek. Short, so that a later walk rarely meets an earlier walk's cursors.
CURSOR_TTL_SECONDS = 600
# The per-key write lock: held for one read and one write, expires by itself if its holder dies.
LOCK_SECONDS = 5
# A cold page starts up to ⌈offset / COLD_SEEK_DIVISOR⌉ rows early (see the module docstring).
COLD_SEEK_DIVISOR = 10
# No walk lasts longer, from its first page to its last (an importer's walk takes minutes; a
# million rows at limit 100 is 10,000 pages): a row that left the feed earlier left before the
# walk began and cannot make its cold pages skip. Generous: too long only costs duplicates.
LONGEST_WALK = dt.timedelta(hours=6)
# Cursors the cache refused, kept in this process; bounded, oldest dropped first.
UNSAVED_MAX_ENTRIES = 10_000
_CURSOR_PREFIX = "feeds:cursor:"


def _lowest(*keys: Any) -> Any | None:
    present = [key for key in keys if key is not None]
    return min(present) if present else None


class _UnsavedCursors:
    """Cursors whose cache write failed, per (identity, offset), merged by minimum, for the TTL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int], tuple[Any, float]] = OrderedDict()

    def get(self, key: tuple[str, int]) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[0]

    def lower(self, key: tuple[str, int], last_pk: Any) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
            current = entry[0] if entry is not None and entry[1] > time.monotonic() else None
            self._entries[key] = (_lowest(current, last_pk), time.monotonic() + CURSOR_TTL_SECONDS)
            while len(self._entries) > UNSAVED_MAX_ENTRIES:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_unsaved = _UnsavedCursors()


def forget_unsaved_cursors() -> None:
    """Drop the cursors this process kept because the cache refused them (tests start clean)."""
    _unsaved.clear()


class _LockNotObtained(Exception):
    pass


# One pending cursor in an identity's state: [lowest last key, walks waiting on it, expiry].
_PK, _WAITING, _EXPIRES = 0, 1, 2


def _live(state: Any, now: float) -> dict[int, list[Any]]:
    """The unexpired pending cursors of a stored state (anything unexpected counts as none)."""
    if not isinstance(state, dict):
        return {}
    return {offset: entry for offset, entry in state.items() if entry[_EXPIRES] > now}


class Cursors:
    """The pending cursors of the walks of one identity: next offset -> lowest last primary key.

    One cache entry per identity (feed, walk query, client) holds only the cursors some walk
    still waits on: a page that continues at offset N adds one waiting walk at N; serving the
    page at N (or the empty page past the end) releases one. A walk that ended leaves nothing
    behind, so the next walk of the identity meets none of its cursors (see the module doc).

    A cache failure only costs speed or duplicates (the pager seeks early), never a skipped row.
    """

    def __init__(self, *, feed: str, walk: dict[str, Any], client: str):
        base = "\x1f".join([feed, *(f"{name}={walk[name]}" for name in sorted(walk)), f"client={client}"])
        self.key = _CURSOR_PREFIX + hashlib.sha256(base.encode()).hexdigest()

    def get(self, offset: int) -> Any | None:
        """The lowest last key pending for `offset` (cache and this process), or None."""
        try:
            state = cache.get(self.key)
        except Exception:  # the cache is an accelerator, never a dependency
            logger.warning("pagination cursor cache unavailable", exc_info=True)
            state = None
        entry = _live(state, time.time()).get(offset)
        return _lowest(entry[_PK] if entry else None, _unsaved.get((self.key, offset)))

    def advance(self, *, served: int, next_offset: int, last_pk: Any) -> None:
        """The page at `served` ended at `last_pk`: its walk now waits at `next_offset`.

        Releases one walk waiting at `served` and adds one at `next_offset`, whose cursor is
        lowered to `last_pk` (never raised). Never raises.
        """
        try:
            self._update(release=served, add=(next_offset, last_pk))
        except Exception:
            logger.warning("pagination cursor not stored", exc_info=True)
            # The state may hold another walk's higher key at `next_offset`: remove it (its
            # walks then seek early), keep ours here.
            _unsaved.lower((self.key, next_offset), last_pk)
            try:
                cache.delete(self.key)
            except Exception:
                logger.warning("stale pagination cursor not removed", exc_info=True)

    def walk_ended(self, offset: int) -> None:
        """The empty page at `offset` was served: one walk waits there no longer. Never raises."""
        try:
            self._update(release=offset, add=None)
        except Exception:  # a leftover cursor only costs duplicates
            logger.warning("pagination cursor not released", exc_info=True)

    def _update(self, *, release: int, add: tuple[int, Any] | None) -> None:
        lock = f"{self.key}:lock"
        if not _acquire(lock):
            raise _LockNotObtained(self.key)
        try:
            now = time.time()
            pending = _live(cache.get(self.key), now)
            released = pending.get(release)
            if released is not None:
                released[_WAITING] -= 1
                if released[_WAITING] <= 0:
                    del pending[release]
            if add is not None:
                offset, last_pk = add
                entry = pending.get(offset)
                lowest = _lowest(entry[_PK] if entry else None, last_pk, _unsaved.get((self.key, offset)))
                waiting = entry[_WAITING] + 1 if entry else 1
                pending[offset] = [lowest, waiting, now + CURSOR_TTL_SECONDS]
            if pending:
                cache.set(self.key, pending, CURSOR_TTL_SECONDS)
            elif released is not None:
                cache.delete(self.key)  # the identity's last walk ended: nothing waits
        finally:
            try:
                cache.delete(lock)
            except Exception:  # it expires by itself
                logger.warning("pagination cursor lock not released", exc_info=True)


def _acquire(lock: str) -> bool:
    """Take the per-identity lock, waiting while another write holds it (normally milliseconds).

    Gives up only after `LOCK_SECONDS`, when a holder that died would have lost it anyway.
    """
    deadline = time.monotonic() + LOCK_SECONDS
    pause = 0.002
    while not cache.add(lock, 1, LOCK_SECONDS):
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    return True


def cold_seek_margin(offset: int) -> int:
    """How many rows early a page at `offset` starts when its cursor is unknown."""
    return math.ceil(offset / COLD_SEEK_DIVISOR)


@dataclass(frozen=True)
class Start:
    """Where a page starts: after primary key `after` (None: at the first row), or past the end.

    `via` says how it was found: "first" (offset 0 or a whole feed), "cursor", "exact seek"
    (a cold page where no row can have left the feed during the walk) or "seek" (with margin).
    """

    after: Any | None
    past_end: bool
    via: str


def page_start(
    queryset: QuerySet,
    *,
    pk_name: str,
    offset: int,
    cursors: Cursors | None,
    positions_kept: Callable[[], bool] | None = None,
) -> Start:
    """Locate where the page at `offset` of `queryset` (ordered by `pk_name`) starts.

    After the walk's cursor when one is known; otherwise by cold seek. `positions_kept`, when
    given, says whether no row can have left `queryset` during the walk (no row that left since
    `LONGEST_WALK` ago): then the seek is exact, at position `offset`; otherwise, or without it,
    up to `cold_seek_margin(offset)` rows earlier (see the module docstring).
    """
    if offset == 0:
        return Start(after=None, past_end=False, via="first")
    if cursors is not None:
        after = cursors.get(offset)
        if after is not None:
            return Start(after=after, past_end=False, via="cursor")
    if positions_kept is not None:
        exact = _seek(queryset, pk_name=pk_name, position=offset - 1, via="exact seek")
        # Asked after the seek, not before: a row deleted before the seek counted has its outbox
        # row committed with it, so it is seen here; one deleted after cannot have moved the seek.
        if positions_kept():
            return exact
    return _seek(queryset, pk_name=pk_name, position=offset - 1 - cold_seek_margin(offset), via="seek")


def _seek(queryset: QuerySet, *, pk_name: str, position: int, via: str) -> Start:
    """Start after the row at `position` (0-based) of `queryset` now."""
    if position < 0:
        return Start(after=None, past_end=False, via=via)
    # A whole catalogue table on PostgreSQL: its rank index answers without counting every key.
    ranked = rank_index.key_at_position_in(queryset, position)
    if ranked.available:
        return Start(after=ranked.key, past_end=ranked.past_end, via=via)
    # Index-only: the primary keys before the page are counted, their rows never read.
    before = list(queryset.order_by(pk_name).values_list(pk_name, flat=True)[position : position + 1])
    if not before:
        return Start(after=None, past_end=True, via=via)
    return Start(after=before[0], past_end=False, via=via)


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
