"""One page of a feed, read by key: `FeedPagination`, shaped like DRF's `BasePagination`.

`FeedPagination(params, client=…, deletions_since=…).paginate_queryset(queryset, feed, cutoff=…)`
locates the page at `params.offset` after the walk's cursor, else by cold seek: for customers
and orders at the position kept in `feeds.listing` (exact), for a catalogue exact when no row
can have left it during the walk, else `cold_seek_margin(offset)` rows early (a recent deletion,
`modified_after`). Pages may overlap, never skip a row that stayed in the feed (docs/feeds.md,
"Pagination design"). `Cursors` keeps an identity's pending cursors in Django's cache (on Redis:
one hash, one atomic script per write); a served page keeps its own until its walk's next page
(a retry), and a short page adds one at offset + rows served. `keyset_batches()` reads in key
order in constant memory.
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
    """One cursor of an identity: where its walks continue, how many wait, until when; and
    whether a served page keeps it for a retry (`held`, `upto`), which page wrote it (`prev`)
    and the other cursor that page wrote (`sibling`: one at offset + limit, one at offset +
    rows served).

    Stored in the cache as a plain list in this order (`list(record)`; records of three items,
    the format before retries were kept, still read), so unpickling never depends on this
    class; `read()` turns a stored value back into a record, or None. `last_pk` None: the page
    started at the first row (offset 0 only).
    """

    last_pk: int | None  # the lowest last primary key of the walks waiting at this offset
    waiting: int  # how many walks wait here
    expires: float  # unix time
    held: int = 0  # walks served this offset that keep it until their next page is served
    upto: int | None = None  # the last key a held page's range reached: a retry ends there
    prev: int | None = None  # the offset whose page wrote this cursor
    sibling: int | None = None  # the other cursor that page wrote

    @classmethod
    def read(cls, stored: Any) -> CursorRecord | None:
        """The record a stored value holds; None for anything else (a miss, never a wrong row)."""
        if not isinstance(stored, (tuple, list)) or len(stored) not in (3, 7):
            return None
        last_pk, waiting, expires, *rest = stored
        held, upto, prev, sibling = rest or (0, None, None, None)
        if not (_is_int(last_pk) or (last_pk is None and rest)):
            return None
        if not (_is_int(waiting) and _is_int(held) and isinstance(expires, (int, float))):
            return None
        if not all(value is None or _is_int(value) for value in (upto, prev, sibling)):
            return None
        return cls(last_pk, waiting, expires, held, upto, prev, sibling)


_NO_START = object()  # `advance` without `start`: the page keeps no cursor


def _apply(
    pending: dict[int, CursorRecord],
    *,
    release: int,
    keep: tuple[Any, Any] | None,
    adds: list[tuple[int, Any, int | None]],
    now: float,
) -> None:
    """The one update of an identity's cursors (`_UPDATE_SCRIPT` does the same on Redis).

    The page at `release` was served: one walk waits there no longer; the cursor of the page
    before it (`prev`) is released from its hold, and the other cursor that page wrote
    (`sibling`) from its wait (both once). With `keep` = (start, upto) the served page keeps its
    cursor, held, so that a retry finds it and ends at `upto`. Each add (offset, last_pk,
    sibling) is one walk more waiting at offset, merged by minimum; a second add by the same
    page (a retry) adds no wait.
    """
    expires = now + CURSOR_TTL_SECONDS
    this = pending.get(release)
    if this is not None:
        if this.prev is not None and this.prev != release and (before := pending.get(this.prev)) and before.held:
            pending[this.prev] = before._replace(held=before.held - 1)
        if this.sibling is not None and (other := pending.get(this.sibling)):
            if other.prev == this.prev and other.waiting:
                pending[this.sibling] = other._replace(waiting=other.waiting - 1)
        waiting, held = this.waiting, this.held
        if waiting:
            waiting -= 1
            held += 1 if keep is not None else 0
        this = this._replace(waiting=waiting, held=held, prev=None, sibling=None)
        if keep is not None and this.held:
            start, upto = keep
            this = this._replace(
                last_pk=None if start is None or this.last_pk is None else min(start, this.last_pk),
                upto=_lowest(this.upto, upto),
                expires=expires,
            )
        pending[release] = this
    elif keep is not None:
        start, upto = keep
        pending[release] = CursorRecord(start, 0, expires, 1, upto)
    for offset, last_pk, sibling in adds:
        record = pending.get(offset)
        if record is None or (record.waiting <= 0 and record.held <= 0):  # none, or just released
            pending[offset] = CursorRecord(last_pk, 1, expires, 0, None, release, sibling)
            continue
        lowest = None if record.last_pk is None else _lowest(record.last_pk, last_pk)  # None: the first row
        again = keep is not None and record.prev == release
        pending[offset] = record._replace(
            last_pk=lowest, waiting=record.waiting + (0 if again else 1), expires=expires, prev=release, sibling=sibling
        )
    for offset in [offset for offset, record in pending.items() if record.waiting <= 0 and record.held <= 0]:
        del pending[offset]


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
    page at N (or the empty page past the end) releases one, and the page keeps its cursor,
    held, until the walk's next page is served (`advance(start=…)`). A walk that ended leaves nothing
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

    def find(self, offset: int) -> CursorRecord | None:
        """The record at `offset` (its `last_pk` lowered to what this process kept), or None."""
        try:
            if self._redis is not None:
                record = self._redis.get(self.hash_key, offset, time.time())
            else:
                record = _pending(cache.get(self.key), time.time()).get(offset)
        except Exception:  # the cache is an accelerator, never a dependency
            logger.warning("pagination cursor cache unavailable", exc_info=True)
            record = None
        kept = _unsaved.get((self.key, offset))
        if record is None:
            return None if kept is None else CursorRecord(kept, 1, time.time() + CURSOR_TTL_SECONDS)
        return record if kept is None or record.last_pk is None else record._replace(last_pk=min(record.last_pk, kept))

    def get(self, offset: int) -> Any | None:
        """The lowest last key pending for `offset` (cache and this process), or None."""
        record = self.find(offset)
        return record.last_pk if record is not None else None

    def advance(
        self,
        *,
        served: int,
        next_offset: int,
        last_pk: Any,
        start: Any = _NO_START,
        upto: Any | None = None,
        by_rows: tuple[int, Any] | None = None,
    ) -> None:
        """The page at `served` ended at `last_pk`: its walk now waits at `next_offset`.

        Releases one walk waiting at `served` and adds one at `next_offset`, whose cursor is
        lowered to `last_pk` (never raised). With `start` (the key the page started after, None
        for the first row) the page keeps its cursor until its walk's next page is served, so a
        retry starts there and ends at `upto`; `by_rows` = (rows served, last key served) also
        adds the cursor of a walk that advances by rows served, when that is not `next_offset`.
        Never raises.
        """
        adds: list[tuple[int, Any, int | None]] = [(next_offset, last_pk, None)]
        if by_rows is not None and by_rows[0] > 0 and served + by_rows[0] != next_offset:
            adds = [(next_offset, last_pk, served + by_rows[0]), (served + by_rows[0], by_rows[1], next_offset)]
        keep = None if start is _NO_START else (start, upto)
        try:
            self._update(release=served, keep=keep, adds=adds)
        except Exception:
            logger.warning("pagination cursor not stored", exc_info=True)
            # The state may hold another walk's higher key at these offsets: remove it (its
            # walks then seek early), keep ours here.
            for offset, key, _ in adds:
                _unsaved.lower((self.key, offset), key)
            try:
                if self._redis is not None:
                    self._redis.client.delete(self.hash_key)
                else:
                    cache.delete(self.key)
            except Exception:
                logger.warning("stale pagination cursor not removed", exc_info=True)

    def walk_ended(self, offset: int) -> None:
        """The empty page at `offset` was served: one walk waits there no longer, and the
        cursors its previous page kept are released. Never raises."""
        try:
            self._update(release=offset, keep=None, adds=[])
        except Exception:  # a leftover cursor only costs duplicates
            logger.warning("pagination cursor not released", exc_info=True)

    def _update(self, *, release: int, keep: tuple[Any, Any] | None, adds: list[tuple[int, Any, int | None]]) -> None:
        adds = [(offset, _lowest(key, _unsaved.get((self.key, offset))), sibling) for offset, key, sibling in adds]
        if self._redis is not None:
            self._redis.update(self.hash_key, release=release, keep=keep, adds=adds, now=time.time())
            return
        lock = f"{self.key}:lock"
        if not _acquire(lock):
            raise _LockNotObtained(self.key)
        try:
            now = time.time()
            pending = _pending(cache.get(self.key), now)
            had = bool(pending)
            _apply(pending, release=release, keep=keep, adds=adds, now=now)
            if pending:
                cache.set(self.key, {offset: list(record) for offset, record in pending.items()}, CURSOR_TTL_SECONDS)
            elif had:
                cache.delete(self.key)  # the identity's last walk ended: nothing waits
        finally:
            try:
                cache.delete(lock)
            except Exception:  # it expires by itself
                logger.warning("pagination cursor lock not released", exc_info=True)


# `_apply` on Redis, atomic: ARGV = now, ttl, the served offset, keep ("1"/"0"), the page's start
# and upto, then (offset, last_pk, sibling) per add. A record is "last_pk|waiting|expires|held|
# upto|prev|sibling" ("" for None; three-part records of the earlier format are read); keys are
# compared as decimal integers (never as Lua floats); expired records are dropped; the hash
# expires CURSOR_TTL_SECONDS after its last write.
_UPDATE_SCRIPT = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local served, keep, start, upto = ARGV[3], ARGV[4] == '1', ARGV[5], ARGV[6]
local expires = string.format('%.3f', now + ttl)
local function less(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a < #b end
  return a < b
end
local function lowest(a, b)
  if a == '' then return b end
  if b == '' then return a end
  if less(b, a) then return b end
  return a
end
local function parse(value)
  local parts = {}
  for part in (value .. '|'):gmatch('([^|]*)|') do parts[#parts + 1] = part end
  if #parts ~= 3 and #parts ~= 7 then return nil end
  local function int(text, empty)
    if text == '' and empty then return true end
    return text:match('^-?%d+$') ~= nil
  end
  if not (int(parts[1], #parts == 7) and parts[2]:match('^%d+$') and parts[3]:match('^[%d.]+$')) then return nil end
  local r = {pk = parts[1], waiting = tonumber(parts[2]), expires = parts[3], held = 0, upto = '', prev = '', sib = ''}
  if #parts == 7 then
    if not (parts[4]:match('^%d+$') and int(parts[5], true) and int(parts[6], true) and int(parts[7], true)) then
      return nil
    end
    r.held, r.upto, r.prev, r.sib = tonumber(parts[4]), parts[5], parts[6], parts[7]
  end
  if tonumber(r.expires) <= now then return nil end
  return r
end
local records = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local r = parse(all[i + 1])
  if r then records[all[i]] = r else redis.call('HDEL', KEYS[1], all[i]) end
end
local touched = {}
local this = records[served]
if this then
  local before = this.prev ~= '' and this.prev ~= served and records[this.prev]
  if before and before.held > 0 then
    before.held = before.held - 1
    touched[this.prev] = true
  end
  local other = this.sib ~= '' and records[this.sib]
  if other and other.prev == this.prev and other.waiting > 0 then
    other.waiting = other.waiting - 1
    touched[this.sib] = true
  end
  if this.waiting > 0 then
    this.waiting = this.waiting - 1
    if keep then this.held = this.held + 1 end
  end
  this.prev, this.sib = '', ''
  if keep and this.held > 0 then
    if start == '' or this.pk == '' then this.pk = '' else this.pk = lowest(this.pk, start) end
    this.upto = lowest(this.upto, upto)
    this.expires = expires
  end
  touched[served] = true
elseif keep then
  records[served] = {pk = start, waiting = 0, expires = expires, held = 1, upto = upto, prev = '', sib = ''}
  touched[served] = true
end
for i = 7, #ARGV, 3 do
  local offset, pk, sib = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local r = records[offset]
  if r and r.waiting <= 0 and r.held <= 0 then r = nil end -- just released
  if r then
    if r.pk ~= '' then r.pk = lowest(r.pk, pk) end
    if not (keep and r.prev == served) then r.waiting = r.waiting + 1 end
    r.expires, r.prev, r.sib = expires, served, sib
  else
    records[offset] = {pk = pk, waiting = 1, expires = expires, held = 0, upto = '', prev = served, sib = sib}
  end
  touched[offset] = true
end
for offset in pairs(touched) do
  local r = records[offset]
  if r.waiting <= 0 and r.held <= 0 then
    redis.call('HDEL', KEYS[1], offset)
  else
    redis.call('HSET', KEYS[1], offset, table.concat({r.pk, r.waiting, r.expires, r.held, r.upto, r.prev, r.sib}, '|'))
  end
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
        if len(parts) == 3:
            parts += ["0", "", "", ""]
        try:
            pk, upto, prev, sibling = (None if parts[i] == "" else int(parts[i]) for i in (0, 4, 5, 6))
            record = CursorRecord(pk, int(parts[1]), float(parts[2]), int(parts[3]), upto, prev, sibling)
        except (ValueError, IndexError):
            return None  # a record it cannot read is a miss
        return record if record.expires > now and len(parts) == 7 else None

    def update(
        self,
        key: str,
        *,
        release: int,
        keep: tuple[Any, Any] | None,
        adds: list[tuple[int, Any, int | None]],
        now: float,
    ) -> None:
        start, upto = keep if keep is not None else (None, None)
        args: list[Any] = [f"{now:.3f}", CURSOR_TTL_SECONDS, str(release), "1" if keep else "0"]
        args += [_text(start), _text(upto)]
        for offset, last_pk, sibling in adds:
            if not _is_int(last_pk):
                raise TypeError("cursors on Redis hold integer keys")
            args += [str(offset), str(last_pk), _text(sibling)]
        for value in (start, upto):
            if value is not None and not _is_int(value):
                raise TypeError("cursors on Redis hold integer keys")
        self.script(keys=[key], args=args)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


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
        offset - 1 of the feed's listing, the live rows up to its `limit`-th listed row; a page
        served again before its walk's next page (a retry) ends where it ended then."""
        offset = self.params.offset
        record = cursors.find(offset) if cursors is not None else None
        upto = record.upto if record is not None and record.held else None
        if offset == 0:
            self.start = Start(after=None, past_end=False, via="first")
        elif record is not None and record.last_pk is not None:
            self.start = Start(after=record.last_pk, past_end=False, via="cursor")
        else:
            upto = None
            self.start = _listed_seek(queryset, feed.name, pk_name=pk_name, position=offset - 1)
        if self.start.past_end:
            return self._walked(iter(()), pk_name=pk_name, cursors=cursors)
        return self._listed_batches(queryset, feed, pk_name=pk_name, cursors=cursors, after=self.start.after, upto=upto)

    def _listed_batches(
        self,
        queryset: QuerySet,
        feed: Feed,
        *,
        pk_name: str,
        cursors: Cursors | None,
        after: Any | None,
        upto: Any | None,
    ) -> Iterator[list[dict[str, Any]]]:
        limit = self.params.limit or BATCH_SIZE  # always given: only paged walks come here
        start = after
        served, end = 0, None
        while True:
            members = listing.members_after(feed.name, after, limit)
            if upto is not None:
                upper = upto  # a retry: the range the page had when it was first served
            else:
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
            after, upto = upper, None  # every row of the range has left the feed: the next range
        if cursors is None:
            return
        offset = self.params.offset
        if end is None:
            cursors.walk_ended(offset)
            return
        last_served = end
        if upper is not None and served < limit:
            end = upper  # the range's unserved rows have left the feed
        cursors.advance(
            served=offset,
            next_offset=offset + limit,
            last_pk=end,
            start=start,
            upto=end,
            by_rows=(served, last_served),
        )

    def _walked(
        self, batches: Iterator[list[dict[str, Any]]], *, pk_name: str, cursors: Cursors | None
    ) -> Iterator[list[dict[str, Any]]]:
        """`batches`; once exhausted, the walk waits for its next page (or has ended)."""
        last_pk, served = None, 0
        for batch in batches:
            last_pk = batch[-1][pk_name]
            served += len(batch)
            yield batch
        if cursors is None:
            return
        offset = self.params.offset
        if last_pk is not None:
            # The next page of this walk continues from here instead of seeking; this page's
            # start is kept for a retry until then.
            cursors.advance(
                served=offset,
                next_offset=offset + self.params.limit,
                last_pk=last_pk,
                start=self.start.after if self.start is not None else None,
                by_rows=(served, last_pk),
            )
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
