"""Feed responses as a stream of bytes, for the HTTP views and for commands (`export_feed`).

    feed_chunks(name, *, params, fmt="json", client="", now=None) -> FeedStream

    name    a registry name ("products", "categories", "orders", "customers", "pages") or
            "all" (the single feed; JSON only, never paged). Unknown: `FeedNotFound`.
    params  a `feeds.params.FeedParams` (`parse_params()` for a query string, or built directly).
            A language outside `CLERK_LANGUAGES` is a `BadParameter`.
    fmt     "json" (an array; the single feed's object) or "ndjson" (one object per line).
    client  an opaque identity of the caller (never a token): part of the pagination cursor's
            key, so walks of different importers never share cursors. "" for commands.
    now     the moment the feed is served at (GDPR window, `modified_after`, ages); default now.

The result is an `Iterator[bytes]` of chunks of about 64 KB, read from the database in keyset
batches: constant memory whatever the feed's size. Before `feed_chunks` returns, the page has
been located and its first batch read and shaped, so a database that cannot answer fails
there, as an ordinary exception, not in the middle of a 200. A failure later ends the body
with `feeds.encoding.POISON` and re-raises: the body never parses as a complete feed. When
the iteration is over, `rows` and `bytes` say what it carried.

A personal feed (`Feed.personal`) records each batch's ids as held by Clerk (`gdpr.holdings`)
before shaping it: a batch whose recording fails is never served (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils import timezone

from clerk.outbox import deletion_queued_since
from feeds import encoding
from feeds.base import Feed
from feeds.errors import BadParameter
from feeds.pagination import LONGEST_WALK, Cursors, keyset_batches, page_start
from feeds.params import FeedParams
from feeds.registry import FEEDS, SINGLE_FEED, data_changed_at, feed_class
from gdpr.holdings import record_handed_out

__all__ = ["FeedStream", "feed_chunks", "modified_since"]


class FeedStream:
    """The chunks of one feed response; `rows` and `bytes` count what has been produced."""

    def __init__(self, *, name: str, fmt: str, params: FeedParams):
        self.name = name
        self.fmt = fmt
        self.params = params
        self.rows = 0
        self.bytes = 0
        self._chunks: Iterator[bytes] = iter(())

    def __iter__(self) -> FeedStream:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.bytes += len(chunk)
        return chunk

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    @property
    def content_type(self) -> str:
        return encoding.CONTENT_TYPES[self.fmt]

    def counted(self, objects: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """`objects`, counted into `rows` as they pass."""
        for obj in objects:
            self.rows += 1
            yield obj

    def body(self, pieces: Iterator[bytes]) -> FeedStream:
        """Stream `pieces` as chunks, poisoned if producing them fails (`feeds.encoding`)."""
        self._chunks = encoding.guarded(encoding.chunked(pieces))
        return self


def feed_chunks(
    name: str,
    *,
    params: FeedParams,
    fmt: str = encoding.JSON,
    client: str = "",
    now: dt.datetime | None = None,
) -> FeedStream:
    """The body of feed `name` for `params`, as chunks (see the module docstring)."""
    if fmt not in encoding.FORMATS:
        raise ValueError(f"Unknown feed format {fmt!r}; expected one of {encoding.FORMATS}.")
    languages = tuple(settings.CLERK_LANGUAGES)
    if params.language is not None and params.language not in languages:
        raise BadParameter(f"language {params.language!r} is not configured.", code="unknown_language")
    now = now or timezone.now()
    stream = FeedStream(name=name, fmt=fmt, params=params)

    if name == SINGLE_FEED:
        if fmt != encoding.JSON or params.paged:
            raise ValueError("The single feed is one JSON object, never paged.")
        config = {"created": data_changed_at(), "strict": False}
        readers = [
            _PageReader(cls(now=now, languages=languages, language=params.language), params=params, client=client)
            for cls in FEEDS.values()
        ]
        # The first section is opened now (see the docstring); the others when they begin.
        readers[0].open()
        sections = ((reader.feed.name, stream.counted(reader.objects())) for reader in readers)
        pieces = encoding.single_feed(sections, config)
    else:
        feed = feed_class(name)(now=now, languages=languages, language=params.language)
        reader = _PageReader(feed, params=params, client=client)
        reader.open()
        objects = stream.counted(reader.objects())
        pieces = encoding.json_array(objects) if fmt == encoding.JSON else encoding.ndjson_lines(objects)

    return stream.body(pieces)


def modified_since(now: dt.datetime, days: int | None) -> dt.datetime | None:
    """The cutoff of `modified_after=days`: objects changed at or after it are served.

    None (no cutoff) when `days` is None, or so large it reaches before year 1: every object
    then changed "within the last `days` days".
    """
    if days is None:
        return None
    try:
        return now - dt.timedelta(days=days)
    except OverflowError:
        return None


class _PageReader:
    """One feed's objects for one response: locate the page, then read it in keyset batches."""

    def __init__(self, feed: Feed, *, params: FeedParams, client: str):
        self.feed = feed
        self.params = params
        self.client = client
        self._first: list[dict[str, Any]] | None = None
        self._batches: Iterator[list[dict[str, Any]]] | None = None
        self._cursors: Cursors | None = None
        self._last_pk: Any = None  # primary key of the last row read

    def open(self) -> None:
        """Locate the start of the page and read and shape its first batch."""
        if self._batches is not None:
            return
        feed, params = self.feed, self.params
        cutoff = modified_since(feed.now, params.modified_after)
        queryset = feed.selection(modified_since=cutoff)
        pk_name = feed.pk_name()
        if params.paged:
            self._cursors = Cursors(feed=feed.name, walk=params.walk(), client=self.client)
        # Rows leave a catalogue feed only when deleted; with a cutoff, also as it moves with time.
        stable = feed.rows_leave_only_by_deletion and cutoff is None
        start = page_start(
            queryset,
            pk_name=pk_name,
            offset=params.offset,
            cursors=self._cursors,
            positions_kept=self._no_recent_deletion if stable else None,
        )
        if start.past_end:
            self._batches = iter(())
        else:
            self._batches = keyset_batches(
                queryset,
                pk_name=pk_name,
                columns=feed.read_columns(),
                after=start.after,
                limit=params.limit,
            )
        self._first = self._next_batch()

    def _no_recent_deletion(self) -> bool:
        """No row of this feed deleted within `LONGEST_WALK`: none left during the walk.

        Measured against the clock, not the feed's `now`: the outbox stamps real time.
        """
        since = timezone.now() - LONGEST_WALK
        return not deletion_queued_since(self.feed.name, since)

    def objects(self) -> Iterator[dict[str, Any]]:
        """The page's Clerk objects, batch by batch; remembers where the page ended."""
        self.open()
        batch, self._first = self._first, None
        while batch is not None:
            yield from batch
            batch = self._next_batch()
        if self._cursors is None:
            return
        offset = self.params.offset
        if self._last_pk is not None:
            # The next page of this walk continues from here instead of seeking.
            self._cursors.advance(served=offset, next_offset=offset + self.params.limit, last_pk=self._last_pk)
        else:
            self._cursors.walk_ended(offset)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        assert self._batches is not None
        rows = next(self._batches, None)
        if rows is None:
            return None
        pk_name = self.feed.pk_name()
        self._last_pk = rows[-1][pk_name]
        if self.feed.personal:
            # Committed before the batch's bytes exist (the feeds run in autocommit).
            record_handed_out(object_type=self.feed.name, ids=[row[pk_name] for row in rows])
        return self.feed.objects(rows)
