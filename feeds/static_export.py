"""Static feed files: a feed written to disk, for shops that publish their feeds daily.

`export_feed(name, out=…, params=…)` streams the same bytes the HTTP feed serves
(`feeds.stream.feed_chunks`) into a file at constant memory and publishes it atomically (a
temporary file in the target's directory, fsynced, then renamed over the target): readers see
the old complete file or the new one, never a part, and any failure leaves the target as it was.
A name ending in `.gz` is gzip-compressed with deterministic bytes. Returns an `ExportReport`;
files are private (`DEFAULT_MODE`, 0600) unless told otherwise.
See docs/operations.md ("Static feeds").
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from feeds.db_router import replica_reads
from feeds.params import FeedParams
from feeds.stream import feed_chunks

# Customers and orders are personal data: nobody but the owner reads the file unless told to.
DEFAULT_MODE = 0o600

Progress = Callable[[int, int], None]  # (objects so far, bytes so far)


@dataclass(frozen=True)
class ExportReport:
    name: str
    path: Path
    objects: int
    feed_bytes: int  # the feed's own size (before compression)
    file_bytes: int
    seconds: float


def export_feed(
    name: str,
    *,
    out: Path,
    params: FeedParams,
    fmt: str = "json",
    mode: int = DEFAULT_MODE,
    progress: Progress | None = None,
) -> ExportReport:
    """Write feed `name` (a type, or "all") to `out` atomically (docs/operations.md, "Static feeds").

    Raises what the feed raises (`FeedNotFound`, `BadParameter`, a database error) or an
    `OSError` from the disk; in every case `out` is untouched and no temporary file remains.
    """
    out = Path(out)
    started = time.monotonic()
    directory = out.parent if str(out.parent) else Path(".")
    # Same directory, so that the final rename is atomic (never across filesystems).
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{out.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as raw:
            # Catalogue reads may come from the read replica (when one is configured).
            with replica_reads():
                stream = feed_chunks(name, params=params, fmt=fmt)
                with _compressed(raw, out) as sink:
                    for chunk in stream:
                        sink.write(chunk)
                        if progress is not None:
                            progress(stream.rows, stream.bytes)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temp, mode)
        os.replace(temp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(directory)
    return ExportReport(
        name=name,
        path=out,
        objects=stream.rows,
        feed_bytes=stream.bytes,
        file_bytes=out.stat().st_size,
        seconds=time.monotonic() - started,
    )


@contextlib.contextmanager
def _compressed(raw: BinaryIO, out: Path):
    if out.suffix != ".gz":
        yield raw
        return
    # mtime=0 and the final name: the header never carries the temporary file's name or time.
    with gzip.GzipFile(filename=out.stem, mode="wb", fileobj=raw, compresslevel=6, mtime=0) as sink:
        yield sink


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
