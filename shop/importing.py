"""The shop import: validated, batched, idempotent upserts of feed-shaped objects.

`import_file(ImportFile, …)` and `import_objects({type: [objects]}, …)` load categories,
products, pages, customers and orders, in that order (an order needs its customer; the category
tree needs its categories). Reading and parsing are `shop.importfile`, the object rules are
`shop.validation`; this module decides what to write.

How it writes (DESIGN.md, "Data in"):

* In batches (`batch_size`, 2,000 by default), each in its own transaction: a batch that fails
  at the database is rolled back whole and its objects are reported as rejected. Rejected rows
  are never written.
* Upserts by id (`bulk_create(update_conflicts=True)`), after comparing each object with the
  stored row: what the feeds show of it (columns, translations, attributes, category membership,
  subcategories, order lines) is compared in bulk, per batch, as a canonical fingerprint. Equal:
  nothing is written, `updated_at` stays. Different: the row is written, and `updated_at` becomes
  the batch's time, or the file's own `updated_at` when it gives one (stored as given, always).
  So importing the same file twice changes nothing.
* Duplicate ids within one file: the first occurrence counts, later ones are rejected.
* Orders: an order naming an unknown customer is rejected (without the customer the GDPR policy
  cannot be applied to it). An order line naming an unknown product is kept, its id stored as
  given: orders keep the history of deleted products, and Clerk learns from it.
* Products may name categories the shop has not sent (kept as given, like Clerk does).
* Categories: `subcategories` set the children's `parent` once the whole categories section is
  written. The tree is checked first, over the whole file: a subcategory that is neither in the
  file nor in the shop, a category listed under two parents, or a cycle rejects the listing
  category. A category that loses or gains a child has changed (its feed object lists them).
* Erased customers and orders are never brought back: such rows are rejected.
* Consents are appended to the consent ledger, which lives in `gdpr` (shop must not import it):
  the caller passes a `ConsentLedger` (`gdpr.importing.LedgerForImport`). Without one, customers
  carrying consents are rejected. A customer whose consent state the import changed has changed.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.utils import timezone

from shop.bulk import decimal_digits, fetch_rows, insert_rows, upsert_rows
from shop.importfile import ImportFile, Item, Outline, collect_links
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory
from shop.validation import (
    TYPES,
    CleanObject,
    ConsentCheck,
    ConsentData,
    OrderLineData,
    Problem,
    Rules,
    object_id,
    validate,
)

DEFAULT_BATCH_SIZE = 2000


# --- what the caller provides ------------------------------------------------------------------
class ConsentLedger(Protocol):
    """What the import needs from the consent ledger (implemented in `gdpr.importing`)."""

    def check(self, purpose: str, source: str, at: dt.datetime) -> list[tuple[str, str]]:
        """The ledger's rules for one consent entry: [(field, reason)], [] when it is valid."""

    def guard(self, customer_ids: Collection[int]) -> AbstractContextManager:
        """Wraps a batch that may take customers or their orders out of the feeds."""

    def append(self, consents: Sequence[tuple[int, ConsentData]]) -> set[int]:
        """Append the records the ledger lacks; return the customers whose consent state changed."""


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
class TypeCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, other: TypeCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected


@dataclass
class ImportResult:
    counts: dict[str, TypeCounts] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.counts.values())

    def summary(self) -> str:
        """One line: created / updated / unchanged / rejected per type."""
        if not self.counts:
            return "nothing to import"
        parts = [
            f"{name} {c.created} created, {c.updated} updated, {c.unchanged} unchanged, {c.rejected} rejected"
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
) -> ImportResult:
    """Import an opened file (see `shop.importfile`); raises `UnreadableFile` before writing
    anything when the file cannot be imported at all."""
    on_read, bar = _bar(progress, "checking", None)
    try:
        outline = source.check(on_read)
    finally:
        bar.close()
    importer = _Importer(reporter=reporter, ledger=ledger, batch_size=batch_size)
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
) -> ImportResult:
    """Import objects already in memory, `{type: [objects]}` (what `shop.demo` builds)."""
    unknown = set(sections) - set(TYPES)
    if unknown:
        raise ValueError(f"unknown types {sorted(unknown)}; expected some of {TYPES}")
    outline = Outline(sections=[t for t in TYPES if t in sections])
    materialised = {name: list(objs) for name, objs in sections.items()}
    for value in materialised.get("categories", ()):
        collect_links(outline.category_links, value)
    importer = _Importer(reporter=reporter, ledger=ledger, batch_size=batch_size)
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
    def __init__(self, *, reporter: Reporter, ledger: ConsentLedger | None, batch_size: int):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.reporter = reporter
        self.ledger = ledger
        self.batch_size = batch_size
        check: ConsentCheck | None = ledger.check if ledger is not None else None
        self.rules = Rules(languages=settings.CLERK_LANGUAGES, consent_check=check, price_digits=decimal_digits())
        self.result = ImportResult()

    def import_type(self, type_name: str, items: Iterator[Item], outline: Outline) -> None:
        counts = self.result.counts.setdefault(type_name, TypeCounts())
        writer = WRITERS[type_name](self, counts)
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


# --- writers: one per type ---------------------------------------------------------------------
def _canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(slots=True)
class _Stored:
    fingerprint: tuple
    updated_at: dt.datetime
    erased_at: dt.datetime | None = None
    customer_id: int | None = None


@dataclass
class _BatchOutcome:
    counts: TypeCounts = field(default_factory=TypeCounts)
    rejections: list[tuple[str, int, list[Problem]]] = field(default_factory=list)  # (where, id, why)


class _Writer:
    """Writes one type. Subclasses say which model, columns and relation they compare."""

    model: ClassVar[type[Model]]
    type_name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    json_columns: ClassVar[frozenset[str]] = frozenset()
    stored_extra: ClassVar[tuple[str, ...]] = ()  # more stored columns read, never compared

    def __init__(self, importer: _Importer, counts: TypeCounts):
        self.importer = importer
        self.counts = counts
        self._json_positions = [i for i, c in enumerate(self.columns) if c in self.json_columns]

    # hooks ---------------------------------------------------------------------------------------
    def prepare(self, outline: Outline) -> None:
        """Before the first object of the type."""

    def object_problems(self, oid: int) -> list[Problem]:
        """Problems of the object with this id that need more than the object (the whole file)."""
        return []

    def relation(self, clean: CleanObject) -> Any:
        """What the feeds show of the object beyond its columns, comparable with `stored`'s."""
        return None

    def stored_relations(self, ids: list[int]) -> dict[int, Any]:
        return {}

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        """A reason not to write this object, found once the stored row is known."""
        return None

    def write_relations(self, fresh: list[CleanObject], changed: list[CleanObject]) -> None:
        """`fresh`: created rows; `changed`: updated rows whose relation differs."""

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager:
        return nullcontext()

    def after_write(self, batch: list[CleanObject], written: set[int], now: dt.datetime, outcome: _BatchOutcome) -> None:
        """Last step inside the batch's transaction."""

    def after_commit(self, accepted: list[CleanObject]) -> None:
        """After the batch's transaction committed; `accepted`: the objects written or unchanged."""

    def finish(self) -> None:
        """After the last batch of the type."""

    # the batch ---------------------------------------------------------------------------------
    def fingerprint(self, values: Sequence[Any], relation: Any) -> tuple:
        if self._json_positions:
            values = list(values)
            for i in self._json_positions:
                values[i] = _canonical_json(values[i])
        return (tuple(values), relation)

    def stored(self, ids: list[int]) -> dict[int, _Stored]:
        relations = self.stored_relations(ids)
        names = ("id", "updated_at", *self.stored_extra, *self.columns)
        skip = 2 + len(self.stored_extra)
        found: dict[int, _Stored] = {}
        for values in fetch_rows(self.model, names, ids):
            oid = values[0]
            fp = self.fingerprint(values[skip:], relations.get(oid, self.empty_relation))
            found[oid] = _Stored(fp, values[1], *values[2:skip])
        return found

    empty_relation: ClassVar[Any] = None

    def write_batch(self, batch: list[tuple[str, CleanObject]]) -> None:
        try:
            with transaction.atomic():
                outcome, accepted = self._write(batch)
        except DatabaseError as exc:
            reason = f"the database refused the batch ({_first_line(exc)}); nothing of it was written"
            first, last = batch[0][0], batch[-1][0]
            self.importer.reporter.warning(
                f"{self.type_name}: the batch from {first} to {last} was not written: {reason}"
            )
            for where, clean in batch:
                self.importer.reject(self.counts, self.type_name, where, clean.id, [Problem("", reason)])
            return
        self.counts.add(outcome.counts)
        for where, oid, problems in outcome.rejections:
            self.importer.reporter.rejected(self.type_name, where, oid, problems)
        self.after_commit(accepted)

    def _write(self, batch: list[tuple[str, CleanObject]]) -> tuple[_BatchOutcome, list[CleanObject]]:
        outcome = _BatchOutcome()
        now = timezone.now()
        stored = self.stored([clean.id for _, clean in batch])
        accepted: list[CleanObject] = []
        for where, clean in batch:
            problem = self.refuse(clean, stored.get(clean.id))
            if problem is not None:
                outcome.counts.rejected += 1
                outcome.rejections.append((where, clean.id, [problem]))
            else:
                accepted.append(clean)
        rows: list[tuple] = []
        fresh: list[CleanObject] = []
        relinked: list[CleanObject] = []
        written: set[int] = set()
        with self.guard(accepted, stored):
            for clean in accepted:
                relation = self.relation(clean)
                old = stored.get(clean.id)
                if old is not None:
                    fp = self.fingerprint([clean.row[c] for c in self.columns], relation)
                    same = fp == old.fingerprint and (clean.updated_at in (None, old.updated_at))
                    if same:
                        outcome.counts.unchanged += 1
                        continue
                    outcome.counts.updated += 1
                    if relation != old.fingerprint[1]:
                        relinked.append(clean)
                else:
                    outcome.counts.created += 1
                    fresh.append(clean)
                written.add(clean.id)
                row = clean.row
                rows.append((clean.id, clean.updated_at or now, *[row[c] for c in self.columns]))
            upsert_rows(self.model, ("id", "updated_at", *self.columns), rows)
            self.write_relations(fresh, relinked)
            self.after_write(accepted, written, now, outcome)
        return outcome, accepted


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _ProductWriter(_Writer):
    model = Product
    type_name = "products"
    columns = (
        "name", "description", "price", "list_price", "image", "url", "brand", "created_at",
        "index", "attributes", "translations",
    )
    json_columns = frozenset({"attributes", "translations"})
    empty_relation = ()

    def relation(self, clean: CleanObject) -> tuple[int, ...]:
        return tuple(sorted(clean.links))

    def stored_relations(self, ids: list[int]) -> dict[int, tuple[int, ...]]:
        found: dict[int, list[int]] = defaultdict(list)
        pairs = fetch_rows(ProductCategory, ("product_id", "category_id"), ids, key="product_id")
        for product_id, category_id in pairs:
            found[product_id].append(category_id)
        return {pid: tuple(sorted(cids)) for pid, cids in found.items()}

    def write_relations(self, fresh: list[CleanObject], changed: list[CleanObject]) -> None:
        if changed:
            ProductCategory.objects.filter(product_id__in=[c.id for c in changed]).delete()
        pairs = [(c.id, cid) for c in (*fresh, *changed) for cid in c.links]
        insert_rows(ProductCategory, ("product_id", "category_id"), pairs)


class _PageWriter(_Writer):
    model = Page
    type_name = "pages"
    columns = ("type", "url", "title", "text", "image", "attributes", "translations")
    json_columns = frozenset({"attributes", "translations"})


class _CategoryWriter(_Writer):
    model = Category
    type_name = "categories"
    columns = ("name", "url", "image", "description", "translations")
    json_columns = frozenset({"translations"})
    empty_relation = ()

    def prepare(self, outline: Outline) -> None:
        self.tree_problems = _tree_problems(outline.category_links)
        # Filled as batches commit: the subcategories of every category written or unchanged.
        self.listed: dict[int, tuple[int, ...]] = {}
        self.given_times: set[int] = set()

    def object_problems(self, oid: int) -> list[Problem]:
        return self.tree_problems.get(oid, [])

    def relation(self, clean: CleanObject) -> tuple[int, ...]:
        return tuple(sorted(clean.links))

    def stored_relations(self, ids: list[int]) -> dict[int, tuple[int, ...]]:
        found: dict[int, list[int]] = defaultdict(list)
        for parent_id, child_id in fetch_rows(Category, ("parent_id", "id"), ids, key="parent_id"):
            found[parent_id].append(child_id)
        return {pid: tuple(sorted(cids)) for pid, cids in found.items()}

    def after_commit(self, accepted: list[CleanObject]) -> None:
        for clean in accepted:
            self.listed[clean.id] = clean.links
            if clean.updated_at is not None:
                self.given_times.add(clean.id)

    def finish(self) -> None:
        """Point each listed subcategory at its parent; unlist the children a parent dropped."""
        if not self.listed:
            return
        with transaction.atomic():
            parents = dict(Category.objects.values_list("id", "parent_id"))
            wanted: dict[int, int | None] = {}
            for parent, children in self.listed.items():
                for child in children:
                    if child in parents:
                        wanted[child] = parent
                    else:
                        self.importer.reporter.warning(
                            f"categories: {child} (a subcategory of {parent}) was not imported, so it is not linked"
                        )
            for child, parent in parents.items():
                if parent in self.listed and child not in wanted:
                    wanted[child] = None
            moves = {child: parent for child, parent in wanted.items() if parents[child] != parent}
            by_parent: dict[int | None, list[int]] = defaultdict(list)
            for child, parent in moves.items():
                by_parent[parent].append(child)
            for parent, children in by_parent.items():
                Category.objects.filter(pk__in=children).update(parent_id=parent)
            # A parent's feed object lists its subcategories: one that lost or gained a child
            # changed, even when the file did not list it.
            touched = {parents[c] for c in moves} | set(moves.values())
            touched -= {None} | self.given_times
            if touched:
                Category.objects.filter(pk__in=touched).update(updated_at=timezone.now())


def _tree_problems(links: dict[int, tuple[int, ...]]) -> dict[int, list[Problem]]:
    """What is wrong with the category tree the file describes, by listing category.

    `links` holds every category of the file (first occurrence) and its subcategories.
    """
    db_parents = dict(Category.objects.values_list("id", "parent_id"))
    known = set(db_parents) | set(links)
    problems: dict[int, list[Problem]] = defaultdict(list)
    claimed: dict[int, int] = {}
    for parent, children in links.items():
        for i, child in enumerate(children):
            where = f"subcategories[{i}]"
            if child == parent:
                problems[parent].append(Problem(where, "a category cannot be its own subcategory"))
            elif child not in known:
                problems[parent].append(
                    Problem(where, f"{child} is not a known category (neither in this file nor in the shop)")
                )
            elif child in claimed:
                problems[parent].append(Problem(where, f"{child} is already a subcategory of {claimed[child]}"))
            else:
                claimed[child] = parent

    def parent_of(category: int) -> int | None:
        if category in claimed:
            return claimed[category]
        old = db_parents.get(category)
        # A parent in the file lists all its children: one it no longer lists leaves it.
        return None if old in links else old

    for start in links:
        seen = {start}
        current = parent_of(start)
        while current is not None and current not in seen:
            seen.add(current)
            current = parent_of(current)
        if current == start:
            problems[start].append(Problem("subcategories", "would make the category tree a cycle"))
    return dict(problems)


class _CustomerWriter(_Writer):
    model = Customer
    type_name = "customers"
    columns = (
        "name", "email", "zip", "gender", "age", "birth_date", "is_b2b", "registered_at",
        "terms_accepted_at",
    )
    stored_extra = ("erased_at",)

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        if stored is not None and stored.erased_at is not None:
            return Problem(
                "",
                f"customer {clean.id} was erased on {stored.erased_at:%Y-%m-%d}: "
                "an import never brings erased personal data back",
            )
        return None

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager:
        ledger = self.importer.ledger
        return ledger.guard([c.id for c in batch]) if ledger is not None else nullcontext()

    def after_write(self, batch: list[CleanObject], written: set[int], now: dt.datetime, outcome: _BatchOutcome) -> None:
        ledger = self.importer.ledger
        consents = [(c.id, consent) for c in batch for consent in c.consents]
        if ledger is None or not consents:
            return
        changed = ledger.append(consents)
        # A consent change changes what the feeds show (eligibility, `subscribed`).
        given = {c.id for c in batch if c.updated_at is not None}
        touch = changed - written - given
        newly_changed = changed - written
        if touch:
            Customer.objects.filter(pk__in=touch).update(updated_at=now)
        outcome.counts.unchanged -= len(newly_changed)
        outcome.counts.updated += len(newly_changed)


class _OrderWriter(_Writer):
    model = Order
    type_name = "orders"
    columns = ("customer_id", "email", "placed_at", "terms_accepted_at")
    stored_extra = ("erased_at", "customer_id")
    empty_relation = ()

    def relation(self, clean: CleanObject) -> tuple[OrderLineData, ...]:
        return clean.lines

    def stored_relations(self, ids: list[int]) -> dict[int, tuple[OrderLineData, ...]]:
        found: dict[int, list[OrderLineData]] = defaultdict(list)
        columns = ("order_id", "id", "product_id", "quantity", "unit_price")
        for order_id, _, product_id, quantity, unit_price in sorted(
            fetch_rows(OrderLine, columns, ids, key="order_id")
        ):
            found[order_id].append(OrderLineData(product_id, quantity, unit_price))
        return {oid: tuple(lines) for oid, lines in found.items()}

    def _write(self, batch: list[tuple[str, CleanObject]]) -> tuple[_BatchOutcome, list[CleanObject]]:
        wanted = {c.row["customer_id"] for _, c in batch} - {None}
        self._customers = set(Customer.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        return super()._write(batch)

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        if stored is not None and stored.erased_at is not None:
            return Problem("", f"order {clean.id} was erased: an import never brings erased personal data back")
        customer_id = clean.row["customer_id"]
        if customer_id is not None and customer_id not in self._customers:
            return Problem(
                "customer",
                f"no customer {customer_id} in the shop: import the customer first "
                "(without the customer the GDPR policy cannot be applied to the order)",
            )
        return None

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager:
        ledger = self.importer.ledger
        if ledger is None:
            return nullcontext()
        # An order that moves (in time, or to another customer) may leave the feeds.
        customers = {c.row["customer_id"] for c in batch}
        customers |= {stored[c.id].customer_id for c in batch if c.id in stored}
        return ledger.guard(customers - {None})

    def write_relations(self, fresh: list[CleanObject], changed: list[CleanObject]) -> None:
        if changed:
            OrderLine.objects.filter(order_id__in=[c.id for c in changed]).delete()
        rows = [
            (c.id, line.product_id, line.quantity, line.unit_price) for c in (*fresh, *changed) for line in c.lines
        ]
        insert_rows(OrderLine, ("order_id", "product_id", "quantity", "unit_price"), rows)


WRITERS: dict[str, type[_Writer]] = {
    "categories": _CategoryWriter,
    "products": _ProductWriter,
    "pages": _PageWriter,
    "customers": _CustomerWriter,
    "orders": _OrderWriter,
}
