"""The shop import: validated, batched, idempotent upserts of feed-shaped objects.

`import_file(ImportFile, …)` and `import_objects({type: [objects]}, …)` load categories,
products, pages, customers and orders, in that order, and return an `ImportResult` (counts per
type). Rejected objects are never written and go to the `Reporter`; each batch is one
transaction; importing the same objects twice changes nothing. Consents, `subscribed` and feed
membership go through the caller's `ConsentLedger` (`shop.import_types`); without one, rows
carrying consents or `subscribed` are rejected. `RefusedTypes`: a file holding a type the run
may not import (`only=`), refused whole. The rules and the reasons: docs/import.md.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from shop.import_types import ConsentLedger, ProgressFactory, Reporter, TypeCounts
from shop.import_writers import WRITERS
from shop.importfile import ImportFile, Item, Outline, UnreadableFile, collect_links
from shop.validation import TYPES, CleanObject, ConsentCheck, Problem, Rules, object_id, validate

DEFAULT_BATCH_SIZE = 2000


class RefusedTypes(UnreadableFile):
    """The file holds types this import may not write (`import_file(only=…)`)."""

    def __init__(self, types: Sequence[str]):
        self.types = tuple(types)
        super().__init__(f"the file holds {' and '.join(self.types)}, which this import does not accept")


# --- the result --------------------------------------------------------------------------------
@dataclass
class ImportResult:
    counts: dict[str, TypeCounts] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.counts.values())

    def summary(self) -> str:
        """One line: created / updated / unchanged / rejected (/ kept erased) per type."""
        if not self.counts:
            return "nothing to import"
        parts = [
            f"{name} {c.created} created, {c.updated} updated, {c.unchanged} unchanged, {c.rejected} rejected"
            + (f", {c.kept_erased} kept erased" if c.kept_erased else "")
            for name, c in self.counts.items()
        ]
        return "; ".join(parts)


# --- entry points ------------------------------------------------------------------------------
def import_file(
    source: ImportFile,
    *,
    reporter: Reporter,
    ledger: ConsentLedger | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFactory | None = None,
    now: dt.datetime | None = None,
    only: Collection[str] | None = None,
) -> ImportResult:
    """Import an opened file (see `shop.importfile`); raises `UnreadableFile` before writing
    anything when the file cannot be imported at all, or holds a type not in `only` (when
    given). `now`: the run's clock (default: read once)."""
    on_read, bar = _bar(progress, "checking", None)
    try:
        outline = source.check(on_read)
    finally:
        bar.close()
    refused = [t for t in outline.sections if only is not None and t not in only]
    if refused:
        raise RefusedTypes(refused)
    importer = _Importer(reporter=reporter, ledger=ledger, batch_size=batch_size, now=now)
    for type_name in outline.sections:
        on_read, bar = _bar(progress, type_name, outline.size)
        try:
            importer.import_type(type_name, source.items(type_name, on_read), outline)
        finally:
            bar.close()
    return importer.result


def import_objects(
    sections: Mapping[str, Iterable[Any]],
    *,
    reporter: Reporter,
    ledger: ConsentLedger | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Import objects already in memory, `{type: [objects]}` (what `shop.demo` builds)."""
    unknown = set(sections) - set(TYPES)
    if unknown:
        raise ValueError(f"unknown types {sorted(unknown)}; expected some of {TYPES}")
    outline = Outline(sections=[t for t in TYPES if t in sections])
    materialised = {name: list(objs) for name, objs in sections.items()}
    for value in materialised.get("categories", ()):
        collect_links(outline.category_links, value)
    importer = _Importer(reporter=reporter, ledger=ledger, batch_size=batch_size, now=now)
    for type_name in outline.sections:
        items = (Item(f"index {i}", value) for i, value in enumerate(materialised[type_name]))
        importer.import_type(type_name, items, outline)
    return importer.result


def _bar(progress: ProgressFactory | None, label: str, total: int | None):
    if progress is None:
        return None, _NoBar()
    bar = progress(label, total)
    return bar.update, bar


class _NoBar:
    def close(self) -> None:
        pass


# --- the engine --------------------------------------------------------------------------------
class _Importer:
    def __init__(self, *, reporter: Reporter, ledger: ConsentLedger | None, batch_size: int, now: dt.datetime | None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.reporter = reporter
        self.ledger = ledger
        self.batch_size = batch_size
        check: ConsentCheck | None = ledger.check if ledger is not None else None
        self.rules = Rules(languages=settings.CLERK_LANGUAGES, consent_check=check, now=now or timezone.now())
        self.result = ImportResult()

    def import_type(self, type_name: str, items: Iterator[Item], outline: Outline) -> None:
        counts = self.result.counts.setdefault(type_name, TypeCounts())
        writer = WRITERS[type_name](counts=counts, reporter=self.reporter, ledger=self.ledger)
        writer.prepare(outline)
        seen = _SeenIds()
        batch: list[tuple[str, CleanObject]] = []
        for item in items:
            if item.error is not None:
                self.reject(counts, type_name, item.where, None, [Problem("", item.error)])
                continue
            oid = object_id(item.value)
            if oid is not None and not seen.add(oid):
                problem = Problem("id", f"{oid} appears earlier in this file (the first one counts)")
                self.reject(counts, type_name, item.where, oid, [problem])
                continue
            clean, problems = validate(type_name, item.value, self.rules)
            if oid is not None:
                problems += writer.object_problems(oid)
            if problems:
                self.reject(counts, type_name, item.where, oid, problems)
                continue
            batch.append((item.where, clean))
            if len(batch) >= self.batch_size:
                writer.write_batch(batch)
                batch = []
        if batch:
            writer.write_batch(batch)
        writer.finish()

    def reject(self, counts: TypeCounts, type_name: str, where: str, oid: int | None, problems: list[Problem]) -> None:
        counts.rejected += 1
        self.reporter.rejected(type_name, where, oid, problems)


class _SeenIds:
    """The ids read so far, compactly: files usually list ids in ascending order, and those take
    8 bytes each in a sorted array (a million ids: 8 MB, not the ~70 MB of a set of ints)."""

    def __init__(self) -> None:
        self._ascending = array("q")
        self._others: set[int] = set()

    def add(self, oid: int) -> bool:
        """Remember `oid`; False when it was seen before."""
        ascending = self._ascending
        if not ascending or oid > ascending[-1]:
            ascending.append(oid)
            return True
        i = bisect_left(ascending, oid)
        if (i < len(ascending) and ascending[i] == oid) or oid in self._others:
            return False
        self._others.add(oid)
        return True
