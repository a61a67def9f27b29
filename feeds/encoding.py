"""Feed bodies as bytes: JSON arrays, NDJSON and the single feed's object, streamed with orjson.

Objects are encoded one at a time and coalesced into chunks of about `CHUNK_SIZE` bytes, so
memory stays constant whatever the feed's size. A `Decimal` (a price) is written as a JSON number
with exactly its digits (`exact_decimal`): a float would lose those past the 15th or so.

A failure in the middle of a body must never leave something that parses as a complete feed:
Clerk deletes what a feed omits. `guarded()` ends a failing body with `POISON`, which no JSON
or NDJSON parser accepts (characters outside any string, and for NDJSON an unterminated last
line), then re-raises so the server aborts the connection instead of ending it cleanly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson

CHUNK_SIZE = 64 * 1024

JSON = "json"
NDJSON = "ndjson"
FORMATS = (JSON, NDJSON)
CONTENT_TYPES = {JSON: "application/json", NDJSON: "application/x-ndjson"}

# No newline at the end: the NDJSON body's last line stays unterminated and invalid.
POISON = b"\n<<< clerkfeeds: feed interrupted by a server error; discard this incomplete body >>>"


def exact_decimal(value: Any) -> orjson.Fragment:
    """orjson's `default`: a finite `Decimal` as a JSON number of exactly its digits, trailing
    zeros dropped but one after the point kept (`200.0000` -> `200.0`, as a float reads)."""
    if type(value) is not Decimal or not value.is_finite():
        raise TypeError(f"cannot encode {type(value).__name__} {value!r} as JSON")
    text = str(value)
    if "E" in text:  # str() takes exponent notation for some exponents; JSON wants neither form
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
        if text[-1] == ".":
            text += "0"
    else:
        text += ".0"
    return orjson.Fragment(text)


def json_array(objects: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """`[obj,obj,…]`, as pieces."""
    yield b"["
    separator = b""
    for obj in objects:
        yield separator
        yield orjson.dumps(obj, default=exact_decimal)
        separator = b","
    yield b"]"


def ndjson_lines(objects: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """One object per line, each line ended by a newline, as pieces."""
    for obj in objects:
        yield orjson.dumps(obj, default=exact_decimal, option=orjson.OPT_APPEND_NEWLINE)


def single_feed(sections: Iterable[tuple[str, Iterable[dict[str, Any]]]], config: dict[str, Any]) -> Iterator[bytes]:
    """`{"<name>":[…],…,"config":{…}}`, as pieces; each section's objects are streamed in turn."""
    yield b"{"
    for name, objects in sections:
        yield orjson.dumps(name)
        yield b":"
        yield from json_array(objects)
        yield b","
    yield b'"config":'
    yield orjson.dumps(config)
    yield b"}"


def chunked(pieces: Iterable[bytes], size: int | None = None) -> Iterator[bytes]:
    """Coalesce small pieces into chunks of at least `size` (default `CHUNK_SIZE`) bytes; the
    last one may be shorter. A chunk is sent as soon as it is full: nothing else is held."""
    size = size or CHUNK_SIZE
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass `chunks` through; if producing one fails, emit `POISON` and re-raise.

    Only `Exception`: a `GeneratorExit` (the client went away) must not be answered with a yield.
    """
    try:
        yield from chunks
    except Exception:
        yield POISON
        raise
