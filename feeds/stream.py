"""Feed responses as a stream of bytes, for the HTTP views and for commands (`export_feed`).

`feed_chunks(name, *, params, fmt="json", client="", now=None) -> FeedStream`: an iterator of
~64 KB chunks of feed `name` (a registry name, or "all": JSON only, never paged) for `params`,
in "json" or "ndjson"; `client` (never a token) keys the walk's cursors. The page is located
and its first batch read before it returns, so a database that cannot answer fails there; a
later failure ends the body with `feeds.encoding.POISON` and re-raises. `rows` and `bytes`
count what it carried. Paging is `feeds.pagination`'s; a personal feed records each batch as
held by Clerk (`gdpr.holdings`) before shaping it: a batch not recorded is never served.
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
from feeds.pagination import FeedPagination
from feeds.params import FeedParams, check_language
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
    check_language(params.language)
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
    """One feed's objects for one response: the paginator's batches, recorded and shaped."""

    def __init__(self, feed: Feed, *, params: FeedParams, client: str):
        self.feed = feed
        self.params = params
        self.client = client
        self._first: list[dict[str, Any]] | None = None
        self._batches: Iterator[list[dict[str, Any]]] | None = None

    def open(self) -> None:
        """Locate the start of the page and read and shape its first batch."""
        if self._batches is not None:
            return
        cutoff = modified_since(self.feed.now, self.params.modified_after)
        paginator = FeedPagination(self.params, client=self.client, deletions_since=deletion_queued_since)
        self._batches = paginator.paginate_queryset(
            self.feed.selection(modified_since=cutoff), self.feed, cutoff=cutoff
        )
        self._first = self._next_batch()

    def objects(self) -> Iterator[dict[str, Any]]:
        """The page's Clerk objects, batch by batch."""
        self.open()
        batch, self._first = self._first, None
        while batch is not None:
            yield from batch
            batch = self._next_batch()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        assert self._batches is not None
        rows = next(self._batches, None)
        if rows is None:
            return None
        if self.feed.personal:
            # Committed before the batch's bytes exist (the feeds run in autocommit).
            pk_name = self.feed.pk_name()
            record_handed_out(object_type=self.feed.name, ids=[row[pk_name] for row in rows])
        return self.feed.objects(rows)
