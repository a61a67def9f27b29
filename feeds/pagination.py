"""One page of a feed, read by key: `FeedPagination`, shaped like DRF's `BasePagination`.

`FeedPagination(params, client=…, deletions_since=…).paginate_queryset(queryset, feed, cutoff=…)`
locates the page at `params.offset` after the walk's cursor, else by cold seek: for customers
and orders at the position kept in `feeds.listing` (exact), for a catalogue exact when no row
can have left it during the walk, else `cold_seek_margin(offset)` rows early (a recent deletion,
`modified_after`). Pages may overlap, never skip a row that stayed in the feed (docs/feeds.md,
"Pagination design"). `Cursors` keeps an identity's pending cursors in Django's cache (on Redis:
one hash, one atomic script per write); `keyset_batches()` reads in key order in constant memory.
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
from typing import TYPE_CHECKING, Any, NamedTuple

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from feeds import listing, rank_index

if TYPE_CHECKING:
    from feeds.base import Feed
    from feeds.params import FeedParams

__all__ = [
    "BATCH_SIZE",
    "CURSOR_TTL_SECONDS",
    "LONGEST_WALK",
    "CursorRecord",
    "Cursors",
    "FeedPagination",
    "Start",
    "cold_seek_margin",
    "forget_unsaved_cursors",
    "keyset_batches",
]

logger = logging.getLogger(__name__)

# Rows per query: large enough to amortise a round trip, small enough for constant memory.
BATCH_SIZE = 1000
# An importer's pages come seconds apart: a walk paused this long has its cursor expire and
# continues by cold seek. Short, so that a later walk rarely meets an earlier walk's cursors.
CURSOR_TTL_SECONDS = 600
# The per-key write lock: held for one read and one write, expires by itself if its holder dies.
LOCK_SECONDS = 5
# A cold page starts up to ⌈offset / COLD_SEEK_DIVISOR⌉ rows early (docs/feeds.md).
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class CursorRecord(NamedTuple):
    """One pending cursor of an identity: where its walks continue, how many wait, until when.

    Stored in the cache as a plain list in this order (`list(record)`, the format since cursors
    were introduced), so unpickling never depends on this class; `read()` turns a stored value
    back into a record, or None.
    """

    last_pk: int  # the lowest last primary key of the walks waiting at this offset
    waiting: int  # how many walks wait here
    expires: float  # unix time

    @classmethod
    def read(cls, stored: Any) -> CursorRecord | None:
        """The record a stored value holds; None for anything else (a miss, never a wrong row)."""
        if not isinstance(stored, (tuple, list)) or len(stored) != 3:
            return None
        last_pk, waiting, expires = stored
        if not (_is_int(last_pk) and _is_int(waiting) and isinstance(expires, (int, float))):
            return None
        return cls(last_pk, waiting, expires)


def _pending(state: Any, now: float) -> dict[int, CursorRecord]:
    """The readable, unexpired records of a stored state (anything unexpected counts as none)."""
    if not isinstance(state, dict):
        return {}
    pending = {}
    for offset, stored in state.items():
        record = CursorRecord.read(stored)
        if record is not None and _is_int(offset) and record.expires > now:
            pending[offset] = record
    return pending


class _Unsaved(NamedTuple):
    last_pk: Any
    deadline: float  # time.monotonic()


class _UnsavedCursors:
    """Cursors whose cache write failed, per (identity, offset), merged by minimum, for the TTL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int], _Unsaved] = OrderedDict()

    def get(self, key: tuple[str, int]) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.deadline <= time.monotonic():
                del self._entries[key]
                return None
            return entry.last_pk

    def lower(self, key: tuple[str, int], last_pk: Any) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
            current = entry.last_pk if entry is not None and entry.deadline > time.monotonic() else None
            self._entries[key] = _Unsaved(_lowest(current, last_pk), time.monotonic() + CURSOR_TTL_SECONDS)
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


class Cursors:
    """The pending cursors of the walks of one identity: next offset -> lowest last primary key.

    One cache entry per identity (feed, walk query, client) holds only the cursors some walk
    still waits on: a page that continues at offset N adds one waiting walk at N; serving the
    page at N (or the empty page past the end) releases one. A walk that ended leaves nothing
    behind, so the next walk of the identity meets none of its cursors (docs/feeds.md).

    A cache failure only costs speed or duplicates (the pager seeks early), never a skipped row.
    """

    def __init__(self, *, feed: str, walk: dict[str, Any], client: str):
        base = "\x1f".join([feed, *(f"{name}={walk[name]}" for name in sorted(walk)), f"client={client}"])
        digest = hashlib.sha256(base.encode()).hexdigest()
        self.key = _CURSOR_PREFIX + digest
        self._redis = _RedisCursors.of_cache()
        # On Redis: one hash per identity, field = offset, written by one atomic script.
        self.hash_key = cache.make_key(f"{_CURSOR_PREFIX}h:{digest}") if self._redis else None

    def get(self, offset: int) -> Any | None:
        """The lowest last key pending for `offset` (cache and this process), or None."""
        try:
            if self._redis is not None:
                record = self._redis.get(self.hash_key, offset, time.time())
            else:
                record = _pending(cache.get(self.key), time.time()).get(offset)
        except Exception:  # the cache is an accelerator, never a dependency
            logger.warning("pagination cursor cache unavailable", exc_info=True)
            record = None
        return _lowest(record.last_pk if record else None, _unsaved.get((self.key, offset)))

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
                if self._redis is not None:
                    self._redis.client.delete(self.hash_key)
                else:
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
        if self._redis is not None:
            if add is not None:
                offset, last_pk = add
                add = (offset, _lowest(last_pk, _unsaved.get((self.key, offset))))
            self._redis.update(self.hash_key, release=release, add=add, now=time.time())
            return
        lock = f"{self.key}:lock"
        if not _acquire(lock):
            raise _LockNotObtained(self.key)
        try:
            now = time.time()
            pending = _pending(cache.get(self.key), now)
            released = pending.get(release)
            if released is not None:
                if released.waiting > 1:
                    pending[release] = released._replace(waiting=released.waiting - 1)
                else:
                    del pending[release]
            if add is not None:
                offset, last_pk = add
                record = pending.get(offset)
                lowest = _lowest(record.last_pk if record else None, last_pk, _unsaved.get((self.key, offset)))
                waiting = record.waiting + 1 if record else 1
                pending[offset] = CursorRecord(lowest, waiting, now + CURSOR_TTL_SECONDS)
            if pending:
                cache.set(self.key, {offset: list(record) for offset, record in pending.items()}, CURSOR_TTL_SECONDS)
            elif released is not None:
                cache.delete(self.key)  # the identity's last walk ended: nothing waits
        finally:
            try:
                cache.delete(lock)
            except Exception:  # it expires by itself
                logger.warning("pagination cursor lock not released", exc_info=True)


# Release one wait at ARGV[1]; add one at ARGV[2] (unless "") with key ARGV[3], merged by minimum;
# drop expired records; the hash expires CURSOR_TTL_SECONDS after its last write. A record is
# "last_pk|waiting|expires"; keys are compared as decimal integers (never as Lua floats).
_UPDATE_SCRIPT = """
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local function less(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a < #b end
  return a < b
end
local records = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local pk, waiting, expires = string.match(all[i + 1], '^(-?%d+)|(%d+)|([%d.]+)$')
  if pk and tonumber(expires) > now then
    records[all[i]] = {pk, tonumber(waiting), expires}
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
local released = records[ARGV[1]]
if released then
  if released[2] > 1 then
    redis.call('HSET', KEYS[1], ARGV[1], released[1] .. '|' .. (released[2] - 1) .. '|' .. released[3])
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
if ARGV[2] ~= '' then
  local lowest, waiting, record = ARGV[3], 1, records[ARGV[2]]
  if record and ARGV[2] ~= ARGV[1] then
    if less(record[1], lowest) then lowest = record[1] end
    waiting = record[2] + 1
  end
  redis.call('HSET', KEYS[1], ARGV[2], lowest .. '|' .. waiting .. '|' .. string.format('%.3f', now + ttl))
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""


class _RedisCursors:
    """The cursors on Django's Redis cache: one read (HGET) per page and one atomic script per
    write, through one client per process (`of_cache()`); None for any other cache."""

    # One per Redis location and options: shared by the threads of the process (redis-py's
    # clients are thread-safe), whatever cache objects Django builds per thread.
    _by_location: dict[str, _RedisCursors] = {}

    def __init__(self, client: Any) -> None:
        self.client = client
        self.script = client.register_script(_UPDATE_SCRIPT)

    @classmethod
    def of_cache(cls) -> _RedisCursors | None:
        from django.core.cache.backends.redis import RedisCache

        backend = cache._connections[cache._alias] if hasattr(cache, "_connections") else cache
        if not isinstance(backend, RedisCache):
            return None
        location = repr((backend._servers, sorted(backend._options.items())))
        found = cls._by_location.get(location)
        if found is None:
            found = cls._by_location.setdefault(location, cls(backend._cache.get_client(write=True)))
        return found

    def get(self, key: str, offset: int, now: float) -> CursorRecord | None:
        stored = self.client.hget(key, str(offset))
        if stored is None:
            return None
        parts = stored.decode().split("|") if isinstance(stored, bytes) else str(stored).split("|")
        try:
            record = CursorRecord(int(parts[0]), int(parts[1]), float(parts[2]))
        except (ValueError, IndexError):
            return None  # a record it cannot read is a miss
        return record if record.expires > now else None

    def update(self, key: str, *, release: int, add: tuple[int, Any] | None, now: float) -> None:
        offset, last_pk = add if add is not None else ("", "")
        if add is not None and not _is_int(last_pk):
            raise TypeError("cursors on Redis hold integer keys")
        self.script(keys=[key], args=[str(release), str(offset), str(last_pk), f"{now:.3f}", CURSOR_TTL_SECONDS])


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


class FeedPagination:
    """The page of one feed for one request, shaped like DRF's `BasePagination`.

    `paginate_queryset()` locates the page and returns its row batches; it owns the seek (rank
    index or plain), the walk's cursors and whether a cold seek may be exact. `deletions_since`
    (feed name, moment) says whether a row of that feed was deleted since the moment (the
    outbox knows); without it no cold seek is exact.
    """

    def __init__(
        self,
        params: FeedParams,
        *,
        client: str = "",
        deletions_since: Callable[[str, dt.datetime], bool] | None = None,
    ):
        self.params = params
        self.client = client
        self.deletions_since = deletions_since
        self.start: Start | None = None  # where the page started, once located

    def paginate_queryset(
        self, queryset: QuerySet, feed: Feed, *, cutoff: dt.datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Locate the page of `queryset` (`feed.selection(modified_since=cutoff)`) now; its
        `feed.read_columns()` rows follow as `values()` batches, read as they are asked for."""
        params = self.params
        pk_name = feed.pk_name()
        cursors = Cursors(feed=feed.name, walk=params.walk(), client=self.client) if params.paged else None
        if feed.personal and cutoff is None and params.limit is not None:
            # Customers and orders: their pages are ranges of listed positions (`feeds.listing`).
            return self._listed_page(queryset, feed, pk_name=pk_name, cursors=cursors)
        # Rows leave a catalogue feed only when deleted; with a cutoff, also as it moves with time.
        may_be_exact = feed.rows_leave_only_by_deletion and cutoff is None and self.deletions_since is not None
        self.start = self._locate(
            queryset, pk_name=pk_name, cursors=cursors, feed_name=feed.name if may_be_exact else None
        )
        if self.start.past_end:
            batches: Iterator[list[dict[str, Any]]] = iter(())
        else:
            batches = keyset_batches(
                queryset, pk_name=pk_name, columns=feed.read_columns(), after=self.start.after, limit=params.limit
            )
        return self._walked(batches, pk_name=pk_name, cursors=cursors)

    def _locate(self, queryset: QuerySet, *, pk_name: str, cursors: Cursors | None, feed_name: str | None) -> Start:
        """After the walk's cursor when one is known; otherwise by cold seek, exact when
        `feed_name` is given and none of its rows left during the walk, else with margin."""
        offset = self.params.offset
        if offset == 0:
            return Start(after=None, past_end=False, via="first")
        if cursors is not None:
            after = cursors.get(offset)
            if after is not None:
                return Start(after=after, past_end=False, via="cursor")
        if feed_name is not None:
            exact = _seek(queryset, pk_name=pk_name, position=offset - 1, via="exact seek")
            # Asked after the seek, not before: a row deleted before the seek counted has its
            # outbox row committed with it, so it is seen here; one deleted after cannot have
            # moved the seek. Against the clock, not the feed's `now`: the outbox stamps real time.
            if not self.deletions_since(feed_name, timezone.now() - LONGEST_WALK):
                return exact
        return _seek(queryset, pk_name=pk_name, position=offset - 1 - cold_seek_margin(offset), via="seek")

    def _listed_page(
        self, queryset: QuerySet, feed: Feed, *, pk_name: str, cursors: Cursors | None
    ) -> Iterator[list[dict[str, Any]]]:
        """The page of a personal feed: after the walk's cursor, else after the key at position
        offset - 1 of the feed's listing, the live rows up to its `limit`-th listed row."""
        offset = self.params.offset
        if offset == 0:
            self.start = Start(after=None, past_end=False, via="first")
        elif cursors is not None and (after := cursors.get(offset)) is not None:
            self.start = Start(after=after, past_end=False, via="cursor")
        else:
            self.start = _listed_seek(queryset, feed.name, pk_name=pk_name, position=offset - 1)
        if self.start.past_end:
            return self._walked(iter(()), pk_name=pk_name, cursors=cursors)
        return self._listed_batches(queryset, feed, pk_name=pk_name, cursors=cursors, after=self.start.after)

    def _listed_batches(
        self, queryset: QuerySet, feed: Feed, *, pk_name: str, cursors: Cursors | None, after: Any | None
    ) -> Iterator[list[dict[str, Any]]]:
        limit = self.params.limit or BATCH_SIZE  # always given: only paged walks come here
        served, end = 0, None
        while True:
            members = listing.members_after(feed.name, after, limit)
            upper = members[-1] if len(members) == limit else None
            known = set(members)
            for batch in keyset_batches(
                queryset, pk_name=pk_name, columns=feed.read_columns(), after=after, limit=limit, upto=upper
            ):
                unlisted = [row[pk_name] for row in batch if row[pk_name] not in known]
                if unlisted:
                    # Served rows hold a position before their bytes exist (see docs/feeds.md).
                    listing.add(feed.name, unlisted)
                served += len(batch)
                end = batch[-1][pk_name]
                yield batch
            if served or upper is None:
                break
            after = upper  # every listed row of the range has left the feed: the next range
        if cursors is None:
            return
        offset = self.params.offset
        if end is None:
            cursors.walk_ended(offset)
            return
        if upper is not None and served < limit:
            end = upper  # the range's unserved rows have left the feed
        cursors.advance(served=offset, next_offset=offset + limit, last_pk=end)

    def _walked(
        self, batches: Iterator[list[dict[str, Any]]], *, pk_name: str, cursors: Cursors | None
    ) -> Iterator[list[dict[str, Any]]]:
        """`batches`; once exhausted, the walk waits for its next page (or has ended)."""
        last_pk = None
        for batch in batches:
            last_pk = batch[-1][pk_name]
            yield batch
        if cursors is None:
            return
        offset = self.params.offset
        if last_pk is not None:
            # The next page of this walk continues from here instead of seeking.
            cursors.advance(served=offset, next_offset=offset + self.params.limit, last_pk=last_pk)
        else:
            cursors.walk_ended(offset)


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


def _listed_seek(queryset: QuerySet, feed_name: str, *, pk_name: str, position: int) -> Start:
    """Start after the row at `position` (0-based) of a personal feed's positions: its listing,
    then the live rows above the listing's highest id."""
    key = listing.key_at(feed_name, position)
    if key is not None:
        return Start(after=key, past_end=False, via="listed seek")
    count, highest = listing.positions(feed_name)
    beyond = queryset if highest is None else queryset.filter(**{f"{pk_name}__gt": highest})
    return _seek(beyond, pk_name=pk_name, position=position - count, via="listed seek")


def keyset_batches(
    queryset: QuerySet,
    *,
    pk_name: str,
    columns: tuple[str, ...],
    after: Any | None,
    limit: int | None,
    batch_size: int | None = None,
    upto: Any | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Rows of `queryset` after primary key `after` (and at most `upto`, when given), in key
    order, as `values()` batches.

    At most `limit` rows in all (None: to the end). Each batch is one query,
    `WHERE pk > last ORDER BY pk LIMIT n`; no batch is ever empty.
    """
    batch_size = batch_size or BATCH_SIZE
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        rows = queryset if after is None else queryset.filter(**{f"{pk_name}__gt": after})
        batch = list(rows.order_by(pk_name).values(*columns)[:size])
        if upto is not None and batch and batch[-1][pk_name] > upto:
            # Cut here rather than in SQL: an upper bound on the key lets PostgreSQL plan a
            # policy-filtered page as a bitmap scan of the whole window (10× slower).
            batch = [row for row in batch if row[pk_name] <= upto]
            if batch:
                yield batch
            return
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return  # a short batch is the end: spare the empty query
        after = batch[-1][pk_name]
        if remaining is not None:
            remaining -= len(batch)
