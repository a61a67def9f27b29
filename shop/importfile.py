"""Reading an import file, streamed: the single-feed object, a JSON array, or NDJSON.

`ImportFile(path, type_name=…)` opens a file ("-": standard input; a context manager).
`check()` reads a JSON document once, end to end, and returns its `Outline` (sections, category
tree) or raises `UnreadableFile` before anything is written; `items(type)` then yields one
`Item` per object, in file order, never loading the file whole. Non-integer numbers are
`Decimal`, never float. Shapes: `FEED`, `ARRAY`, `NDJSON` (DESIGN.md, "Data in").

See docs/import.md ("Architecture (shop data path)", reading the file).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import ijson

from shop.validation import TYPES

FEED, ARRAY, NDJSON = "feed", "array", "ndjson"
SECTIONS = frozenset(TYPES) | {"config"}
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_SNIFF = 1 << 16
_ITEM_STARTS = frozenset({"start_map", "start_array", "string", "number", "boolean", "null"})

# Progress callback: called with the number of bytes just read.
OnRead = Callable[[int], None]


class UnreadableFile(Exception):
    """The file cannot be imported at all; nothing of it was written."""


@dataclass(slots=True)
class Item:
    """One object of the file, or why a line of it could not be parsed."""

    where: str  # "line 12" (NDJSON) or "index 3" (its place in the JSON array)
    value: Any = None
    error: str | None = None


@dataclass
class Outline:
    """What `check()` learnt of the whole file before anything is written."""

    sections: list[str] = field(default_factory=list)  # the types present, in import order
    # Category id -> its subcategory ids (first occurrence of each id; integer ids only).
    category_links: dict[int, tuple[int, ...]] = field(default_factory=dict)
    size: int | None = None  # bytes, for progress bars


class ImportFile:
    """An opened import file. Use as a context manager; `check()` first, then `items(type)`."""

    def __init__(self, path: str, *, type_name: str | None = None, stdin: IO[bytes] | None = None):
        """Open `path` ("-": `stdin`, standard input by default); raises `UnreadableFile`."""
        self.type_name = type_name
        self._file: IO[bytes]
        if path == "-":
            # Copied to disk, not memory: a JSON document is read once per section.
            self._file = tempfile.TemporaryFile(prefix="import_shop-")
            shutil.copyfileobj(stdin or sys.stdin.buffer, self._file, length=1 << 20)
        else:
            try:
                self._file = open(path, "rb")  # closed by close()
            except OSError as exc:
                raise UnreadableFile(f"cannot open {path}: {exc.strerror or exc}") from exc
        self._start, first = self._sniff()
        self.format = self._format(first)

    def __enter__(self) -> ImportFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    # --- reading ---------------------------------------------------------------------------------
    def check(self, on_read: OnRead | None = None) -> Outline:
        """Read the whole file once: refuse it if it is not what it should be; see `Outline`."""
        outline = Outline(size=self._size())
        if self.format == NDJSON:
            outline.sections = [self.type_name]
            if self.type_name == "categories":
                for item in self.items("categories"):
                    collect_links(outline.category_links, item.value)
            return outline
        self._check_json(outline, on_read)
        return outline

    def items(self, type_name: str, on_read: OnRead | None = None) -> Iterator[Item]:
        """The objects of one type, in file order."""
        self._file.seek(self._start)
        if self.format == NDJSON:
            yield from self._ndjson_items(on_read)
            return
        prefix = f"{type_name}.item" if self.format == FEED else "item"
        source = _CountingReader(self._file, on_read) if on_read else self._file
        for index, value in enumerate(ijson.items(source, prefix)):
            yield Item(f"index {index}", value)

    # --- internals -------------------------------------------------------------------------------
    def _sniff(self) -> tuple[int, bytes]:
        """Where the JSON starts (past a UTF-8 byte order mark), and its first character."""
        self._file.seek(0)
        chunk = self._file.read(_SNIFF)
        start = len(_BOM) if chunk.startswith(_BOM) else 0
        chunk = chunk[start:]
        while True:
            stripped = chunk.lstrip(_WHITESPACE)
            if stripped:
                return start, stripped[:1]
            chunk = self._file.read(_SNIFF)
            if not chunk:
                raise UnreadableFile("the file is empty")

    def _format(self, first: bytes) -> str:
        if self.type_name is None:
            if first == b"{":
                return FEED
            if first == b"[":
                raise UnreadableFile(
                    "the file is a JSON array: say which objects it holds with --type "
                    '(or give the single-feed object {"products": [...], ...})'
                )
            raise UnreadableFile('expected the single-feed JSON object {"products": [...], ...}')
        if first == b"[":
            return ARRAY
        if first == b"{":
            return NDJSON
        raise UnreadableFile(f"expected a JSON array or NDJSON (one object per line) of {self.type_name}")

    def _size(self) -> int | None:
        try:
            self._file.seek(0, 2)
            return self._file.tell() - self._start
        except OSError:
            return None

    def _check_json(self, outline: Outline, on_read: OnRead | None) -> None:
        """One streamed pass over a JSON document: syntax, sections, the category tree."""
        self._file.seek(self._start)
        source = _CountingReader(self._file, on_read) if on_read else self._file
        feed = self.format == FEED
        present: set[str] = set()
        section = None if feed else self.type_name
        item_prefix = None if feed else "item"
        index = -1
        awaiting_section = False  # the event after a top-level key opens that section
        category: list[Any] | None = None  # [id, [subcategory ids]] of the category being read
        id_prefix, subcategory_prefix = "item.id", "item.subcategories.item"
        try:
            for prefix, event, value in ijson.parse(source):
                if prefix == item_prefix:
                    if event in _ITEM_STARTS:
                        index += 1
                        if section == "categories" and event == "start_map":
                            category = [None, []]
                    elif event == "end_map" and category is not None:
                        if type(category[0]) is int:
                            outline.category_links.setdefault(category[0], tuple(category[1]))
                        category = None
                elif category is not None:
                    if prefix == id_prefix and type(value) is int:
                        category[0] = value
                    elif prefix == subcategory_prefix and type(value) is int:
                        category[1].append(value)
                elif awaiting_section:
                    awaiting_section = False
                    if section != "config" and event != "start_array":
                        raise UnreadableFile(f'the "{section}" section must be an array of objects')
                elif feed and prefix == "" and event == "map_key":
                    section = self._section(value, present)
                    item_prefix = f"{section}.item"
                    id_prefix, subcategory_prefix = f"{item_prefix}.id", f"{item_prefix}.subcategories.item"
                    index = -1
                    awaiting_section = True
        except ijson.JSONError as exc:
            raise UnreadableFile(_json_error(exc, section, index)) from exc
        outline.sections = [t for t in TYPES if t in present] if feed else [self.type_name]

    def _section(self, key: str, present: set[str]) -> str:
        if key not in SECTIONS:
            raise UnreadableFile(
                f'unknown section "{key}": the single feed holds {", ".join(TYPES)} and config '
                "(a JSON array or NDJSON of one type needs --type)"
            )
        if key in present:
            raise UnreadableFile(f'the section "{key}" appears twice')
        present.add(key)
        return key

    def _ndjson_items(self, on_read: OnRead | None) -> Iterator[Item]:
        decode = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant).decode
        read = 0
        for number, raw in enumerate(self._file, start=1):
            if on_read is not None:
                read += len(raw)
                if read >= _SNIFF:
                    on_read(read)
                    read = 0
            line = raw.strip()
            if not line:
                continue
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            try:
                yield Item(f"line {number}", decode(line.decode("utf-8")))
            except UnicodeDecodeError:
                yield Item(f"line {number}", error="is not UTF-8 text")
            except json.JSONDecodeError as exc:
                yield Item(f"line {number}", error=f"is not valid JSON ({exc.msg} at column {exc.colno})")
            except ValueError as exc:  # NaN, Infinity
                yield Item(f"line {number}", error=f"is not valid JSON ({exc})")
        if on_read is not None and read:
            on_read(read)


class _CountingReader:
    """A file wrapper that reports how many bytes were read (for the progress bar)."""

    def __init__(self, file: IO[bytes], on_read: OnRead):
        self._file = file
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._on_read(len(data))
        return data


def collect_links(links: dict[int, tuple[int, ...]], value: Any) -> None:
    """Note a category object's id and subcategories (ignoring what validation will refuse)."""
    if isinstance(value, dict) and type(value.get("id")) is int:
        subs = value.get("subcategories")
        ids = tuple(s for s in subs if type(s) is int) if isinstance(subs, list) else ()
        links.setdefault(value["id"], ids)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _json_error(exc: Exception, section: str | None, index: int) -> str:
    reason = _first_line(exc)
    where = ""
    if section is not None:
        where = f" (in {section}, at index {index})" if index >= 0 else f" (in {section})"
    if "premature EOF" in reason:
        return f"the JSON ends too early{where}: is the file truncated? ({reason})"
    return f"not valid JSON{where}: {reason}"
