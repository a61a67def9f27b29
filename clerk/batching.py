"""Splitting id lists into bounded batches (IN lists, Clerk calls)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of at most `size` items, in the given order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
