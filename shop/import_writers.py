"""Writing one type of imported object: compare with the stored rows, then upsert.

`WRITERS[type]` is the writer class of each type (`shop.importing` drives them): per batch it
reads the stored rows and their fingerprints (a canonical form of what the feeds show), sorts
objects into created, updated, unchanged and kept erased, upserts the created and updated ones
in one statement (`shop.bulk`) and rewrites the relations that changed, in one transaction.
An unchanged object keeps its `updated_at`. Customers and orders are written inside the
ledger's guards (`ConsentLedger.guard_customers` / `guard_orders`). Why: docs/import.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.utils import timezone

from shop.bulk import fetch_grouped, fetch_rows, insert_rows, upsert_rows
from shop.change_hook import objects_changed
from shop.import_types import ConsentLedger, FeedGuard, Reporter, TypeCounts
from shop.importfile import Outline
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory, email_key, record_emails
from shop.validation import CleanObject, OrderLineData, Problem, subscribed_problem


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
    kept_erased: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def _email_key(row: dict[str, Any]) -> str:
    return email_key(row["email"])


def _erased_message(what: str) -> str:
    return f"{what} was erased (right to erasure): personal data not restored"


class _Writer:
    """Writes one type. Subclasses say which model, columns and relation they compare."""

    model: ClassVar[type[Model]]
    type_name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    json_columns: ClassVar[frozenset[str]] = frozenset()
    stored_extra: ClassVar[tuple[str, ...]] = ()  # more stored columns read, never compared
    derived: ClassVar[tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]] = ()  # (column, from the row)
    empty_relation: ClassVar[Any] = None  # the relation of a stored row that has none

    def __init__(self, *, counts: TypeCounts, reporter: Reporter, ledger: ConsentLedger | None):
        self.counts = counts
        self.reporter = reporter
        self.ledger = ledger
        self._json_positions = [i for i, c in enumerate(self.columns) if c in self.json_columns]

    def reject(self, where: str, oid: int | None, problems: list[Problem]) -> None:
        self.counts.rejected += 1
        self.reporter.rejected(self.type_name, where, oid, problems)

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

    def prefetch(self, objects: list[CleanObject]) -> None:
        """Read what `refuse` needs for the whole batch (first step inside its transaction)."""

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        """A reason not to write this object, found once the stored row is known."""
        return None

    def erased(self, clean: CleanObject, stored: _Stored | None) -> str | None:
        """Why this object stays erased (it is neither written nor rejected), or None."""
        return None

    def write_relations(self, fresh: list[CleanObject], changed: list[CleanObject]) -> None:
        """`fresh`: created rows; `changed`: updated rows whose relation differs."""

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager[FeedGuard | None]:
        """Wraps the batch's writes (the ledger's guard, for the types the GDPR policy reads)."""
        return nullcontext()

    def after_write(
        self,
        batch: list[CleanObject],
        written: set[int],
        now: dt.datetime,
        outcome: _BatchOutcome,
        feeds: FeedGuard | None,
    ) -> None:
        """Last step inside the batch's transaction (and inside `guard`, which yielded `feeds`)."""

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
        """The stored rows of these ids, with their fingerprints."""
        names = ("id", "updated_at", *self.stored_extra, *self.columns)
        skip = 2 + len(self.stored_extra)
        rows = fetch_rows(self.model, names, ids)
        relations = self.stored_relations([values[0] for values in rows]) if rows else {}
        found: dict[int, _Stored] = {}
        for values in rows:
            oid = values[0]
            fp = self.fingerprint(values[skip:], relations.get(oid, self.empty_relation))
            found[oid] = _Stored(fp, values[1], *values[2:skip])
        return found

    def write_batch(self, batch: list[tuple[str, CleanObject]]) -> None:
        try:
            with transaction.atomic():
                outcome, accepted = self._write(batch)
        except DatabaseError as exc:
            reason = f"the database refused the batch ({_first_line(exc)}); nothing of it was written"
            first, last = batch[0][0], batch[-1][0]
            self.reporter.warning(f"{self.type_name}: the batch from {first} to {last} was not written: {reason}")
            for where, clean in batch:
                self.reject(where, clean.id, [Problem("", reason)])
            return
        self.counts.add(outcome.counts)
        for where, oid, problems in outcome.rejections:
            self.reporter.rejected(self.type_name, where, oid, problems)
        for where, why in outcome.kept_erased:
            self.reporter.warning(f"{self.type_name} at {where}: {why}")
        self.after_commit(accepted)

    def _write(self, batch: list[tuple[str, CleanObject]]) -> tuple[_BatchOutcome, list[CleanObject]]:
        outcome = _BatchOutcome()
        now = timezone.now()
        self.prefetch([clean for _, clean in batch])
        stored = self.stored([clean.id for _, clean in batch])
        accepted: list[CleanObject] = []
        for where, clean in batch:
            why = self.erased(clean, stored.get(clean.id))
            if why is not None:
                outcome.counts.kept_erased += 1
                outcome.kept_erased.append((where, why))
                continue
            problem = self.refuse(clean, stored.get(clean.id))
            if problem is not None:
                outcome.counts.rejected += 1
                outcome.rejections.append((where, clean.id, [problem]))
            else:
                clean.row.update({name: derive(clean.row) for name, derive in self.derived})
                accepted.append(clean)
        rows: list[tuple] = []
        fresh: list[CleanObject] = []
        relinked: list[CleanObject] = []
        written: set[int] = set()
        with self.guard(accepted, stored) as feeds:
            for clean in accepted:
                relation = self.relation(clean)
                old = stored.get(clean.id)
                if old is not None:
                    fp = self.fingerprint([clean.row[c] for c in self.columns], relation)
                    if fp == old.fingerprint:
                        # Not written, whatever `updated_at` the file gives (see the module).
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
            self.after_write(accepted, written, now, outcome, feeds)
            objects_changed(self.type_name, sorted(written))
        return outcome, accepted


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _ProductWriter(_Writer):
    model = Product
    type_name = "products"
    columns = (
        "name",
        "description",
        "price",
        "list_price",
        "image",
        "url",
        "brand",
        "created_at",
        "index",
        "attributes",
        "translations",
    )
    json_columns = frozenset({"attributes", "translations"})
    empty_relation = ()

    def relation(self, clean: CleanObject) -> tuple[int, ...]:
        return tuple(sorted(clean.links))

    def stored_relations(self, ids: list[int]) -> dict[int, tuple[int, ...]]:
        return fetch_grouped(ProductCategory, "product_id", "category_id", ids)

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
        return fetch_grouped(Category, "parent_id", "id", ids)

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
                        self.reporter.warning(
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
            objects_changed(self.type_name, sorted(({parents[c] for c in moves} | set(moves.values())) - {None}))


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
        "name",
        "email",
        "email_key",
        "zip",
        "gender",
        "age",
        "birth_date",
        "is_b2b",
        "registered_at",
        "terms_accepted_at",
    )
    stored_extra = ("erased_at",)
    derived = (("email_key", _email_key),)

    def erased(self, clean: CleanObject, stored: _Stored | None) -> str | None:
        if stored is not None and stored.erased_at is not None:
            return _erased_message(f"customer {clean.id}")
        return None

    def prefetch(self, objects: list[CleanObject]) -> None:
        # A claimed `subscribed` is checked against the ledger, inside the batch's transaction.
        claimed = {c.id: c.consents for c in objects if c.subscribed is not None}
        ledger = self.ledger
        self._marketing = ledger.marketing_after(claimed) if claimed and ledger is not None else {}

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        if clean.subscribed is not None:
            return subscribed_problem(clean.subscribed, self._marketing.get(clean.id))
        return None

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager[FeedGuard | None]:
        ledger = self.ledger
        if ledger is None:
            return nullcontext()
        # A new email can make the guest orders placed with it follow this customer's objection.
        return ledger.guard_customers([c.id for c in batch], emails={c.row["email"] for c in batch})

    def after_write(
        self,
        batch: list[CleanObject],
        written: set[int],
        now: dt.datetime,
        outcome: _BatchOutcome,
        feeds: FeedGuard | None,
    ) -> None:
        # Every email a customer has had: an objection or an erasure follows the person.
        record_emails([(c.id, c.row["email"]) for c in batch if c.id in written], at=now)
        ledger = self.ledger
        consents = [(c.id, consent) for c in batch for consent in c.consents]
        changed = ledger.append(consents) if ledger is not None and consents else set()
        # A consent change changes what the feeds show (eligibility, `subscribed`): the customer
        # changed, and gets the file's time or the batch's, like a written row.
        newly_changed = changed - written
        if newly_changed:
            given = {c.id: c.updated_at for c in batch if c.id in newly_changed}
            Customer.objects.bulk_update(
                [Customer(pk=pk, updated_at=given[pk] or now) for pk in sorted(newly_changed)],
                ["updated_at"],
                batch_size=500,
            )
        if feeds is not None:
            feeds.keep_times(customers=written | newly_changed)
        objects_changed(self.type_name, sorted(newly_changed))
        outcome.counts.unchanged -= len(newly_changed)
        outcome.counts.updated += len(newly_changed)


class _OrderWriter(_Writer):
    model = Order
    type_name = "orders"
    columns = ("customer_id", "email", "email_key", "placed_at", "terms_accepted_at")
    stored_extra = ("erased_at", "customer_id")
    empty_relation = ()
    derived = (("email_key", _email_key),)

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

    def prefetch(self, objects: list[CleanObject]) -> None:
        wanted = {c.row["customer_id"] for c in objects} - {None}
        found = Customer.objects.filter(pk__in=wanted).values_list("pk", "erased_at")
        self._customers = {pk: erased_at is not None for pk, erased_at in found}

    def erased(self, clean: CleanObject, stored: _Stored | None) -> str | None:
        if stored is not None and stored.erased_at is not None:
            return _erased_message(f"order {clean.id}")
        customer_id = clean.row["customer_id"]
        if self._customers.get(customer_id):
            return _erased_message(f"its customer {customer_id}")
        return None

    def refuse(self, clean: CleanObject, stored: _Stored | None) -> Problem | None:
        customer_id = clean.row["customer_id"]
        if customer_id is not None and customer_id not in self._customers:
            return Problem(
                "customer",
                f"no customer {customer_id} in the shop: import the customer first "
                "(without the customer the GDPR policy cannot be applied to the order)",
            )
        return None

    def guard(self, batch: list[CleanObject], stored: dict[int, _Stored]) -> AbstractContextManager[FeedGuard | None]:
        ledger = self.ledger
        if ledger is None:
            return nullcontext()
        # An order that moves (in time, or to another customer) may leave the feeds, and a new
        # recent order makes its customer's data recent: the customer may enter them.
        customers = {c.row["customer_id"] for c in batch}
        customers |= {stored[c.id].customer_id for c in batch if c.id in stored}
        guests = [
            c.id for c in batch if c.row["customer_id"] is None or (c.id in stored and stored[c.id].customer_id is None)
        ]
        return ledger.guard_orders(customers - {None}, guest_order_ids=guests)

    def after_write(
        self,
        batch: list[CleanObject],
        written: set[int],
        now: dt.datetime,
        outcome: _BatchOutcome,
        feeds: FeedGuard | None,
    ) -> None:
        if feeds is not None:
            feeds.keep_times(orders=written)

    def write_relations(self, fresh: list[CleanObject], changed: list[CleanObject]) -> None:
        if changed:
            OrderLine.objects.filter(order_id__in=[c.id for c in changed]).delete()
        rows = [(c.id, line.product_id, line.quantity, line.unit_price) for c in (*fresh, *changed) for line in c.lines]
        insert_rows(OrderLine, ("order_id", "product_id", "quantity", "unit_price"), rows)


WRITERS: dict[str, type[_Writer]] = {
    "categories": _CategoryWriter,
    "products": _ProductWriter,
    "pages": _PageWriter,
    "customers": _CustomerWriter,
    "orders": _OrderWriter,
}
