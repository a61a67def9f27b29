"""The shop import: validated, batched, idempotent upserts of feed-shaped objects.

`import_file(ImportFile, …)` and `import_objects({type: [objects]}, …)` load categories,
products, pages, customers and orders, in that order (an order needs its customer; the category
tree needs its categories). Reading and parsing are `shop.importfile`, the object rules are
`shop.validation`, the per-type writing is `shop.import_writers` over `shop.bulk`; this module
runs them: it streams the objects, rejects bad ones, batches the good ones, counts.

How it writes (DESIGN.md, "Data in"):

* In batches (`batch_size`, 2,000 by default), each in its own transaction: a batch that fails
  at the database is rolled back whole and its objects are reported as rejected. Rejected rows
  are never written.
* Upserts by id (one `INSERT … ON CONFLICT DO UPDATE` per batch on PostgreSQL,
  `bulk_create(update_conflicts=True)` elsewhere), after comparing each object with the
  stored row: what the feeds show of it (columns, translations, attributes, category membership,
  subcategories, order lines) is compared in bulk, per batch, as a canonical fingerprint. Equal:
  nothing is written and `updated_at` stays, whatever `updated_at` the file gives (a time moved
  here, by a consent recorded since, must not go back). Different: the row is written, and
  `updated_at` becomes the batch's time, or the file's own `updated_at` when it gives one (stored
  as given). So importing the same file twice changes nothing.
* A batch of customers or orders can bring others into the feeds (an order whose customer
  accepted the terms; a customer whose new order made their data recent): those move to the
  batch's time, so incremental imports (`modified_after`) see them
  (`ConsentLedger.guard_customers`, `guard_orders`).
* Duplicate ids within one file: the first occurrence counts, later ones are rejected.
* Orders: an order naming an unknown customer is rejected (without the customer the GDPR policy
  cannot be applied to it). An order line naming an unknown product is kept, its id stored as
  given: orders keep the history of deleted products, and Clerk learns from it.
* Products may name categories the shop has not sent (kept as given, like Clerk does).
* Categories: `subcategories` set the children's `parent` once the whole categories section is
  written. The tree is checked first, over the whole file: a subcategory that is neither in the
  file nor in the shop, a category listed under two parents, or a cycle rejects the listing
  category. A category that loses or gains a child has changed (its feed object lists them).
* Erased customers and orders are never brought back: a row of an erased customer, of an erased
  order or of an order of an erased customer is not written at all (the row stays erased) and is
  reported as a warning and counted as "kept erased", not rejected: the shop keeps sending it.
* Consents are appended to the consent ledger, which lives in `gdpr` (shop must not import it):
  the caller passes a `ConsentLedger` (`gdpr.importing.LedgerForImport`). Without one, customers
  carrying consents or `subscribed` are rejected; with one, a `subscribed` that disagrees with
  the ledger (after the row's own consents) rejects the row. A customer whose consent state the
  import changed has changed (it gets the file's `updated_at`, or the batch's time).
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from shop.import_writers import WRITERS, TypeCounts
from shop.importfile import ImportFile, Item, Outline, collect_links
from shop.validation import TYPES, CleanObject, ConsentCheck, ConsentData, Problem, Rules, object_id, validate

DEFAULT_BATCH_SIZE = 2000


# --- what the caller provides ------------------------------------------------------------------
class FeedGuard(Protocol):
    """What the `ConsentLedger` guards yield: they move the `updated_at` of what entered the feeds."""

    def keep_times(self, *, customers: Collection[int] = (), orders: Collection[int] = ()) -> None:
        """These objects' `updated_at` was set by the batch itself (the file's or the import's
        time): leave it."""


class ConsentLedger(Protocol):
    """What the import needs from the consent ledger (implemented in `gdpr.importing`)."""

    def check(self, purpose: str, source: str, at: dt.datetime) -> list[tuple[str, str]]:
        """The ledger's rules for one consent entry: [(field, reason)], [] when it is valid."""

    def guard_customers(
        self, customer_ids: Collection[int], *, emails: Iterable[str]
    ) -> AbstractContextManager[FeedGuard]:
        """Wraps a batch of customers, which may move in or out of the feeds with their orders
        and the guest orders of their emails (as stored, and `emails`, the ones the batch gives)."""

    def guard_orders(
        self, customer_ids: Collection[int], *, guest_order_ids: Iterable[int]
    ) -> AbstractContextManager[FeedGuard]:
        """Wraps a batch of orders, which may move in or out of the feeds with their customers
        (stored and new: a new order makes its customer's data recent). `guest_order_ids`: the
        batch's orders that have or had no customer (the others are read through their customer)."""

    def append(self, consents: Sequence[tuple[int, ConsentData]]) -> set[int]:
        """Append the records the ledger lacks; return the customers whose consent state changed."""

    def marketing_after(self, consents: Mapping[int, Sequence[ConsentData]]) -> dict[int, bool | None]:
        """Per customer: their latest marketing record once their `consents` are appended, a
        grant (True) or a withdrawal (False); None without any (a customer's `subscribed`)."""


class Reporter(Protocol):
    def rejected(self, type_name: str, where: str, object_id: int | None, problems: list[Problem]) -> None:
        """One object was not written, for these reasons."""

    def warning(self, message: str) -> None:
        """Something the user should know that rejected nothing."""


class Progress(Protocol):
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


# (label, total bytes or None) -> a progress bar
ProgressFactory = Callable[[str, int | None], Progress]


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
) -> ImportResult:
    """Import an opened file (see `shop.importfile`); raises `UnreadableFile` before writing
    anything when the file cannot be imported at all. `now`: the run's clock (default: read once)."""
    on_read, bar = _bar(progress, "checking", None)
    try:
        outline = source.check(on_read)
    finally:
        bar.close()
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
