"""Who is in the customers and orders feeds, before and after a change: its exits and entries.

`track_feed_changes(...)` wraps every write that can change who is eligible (a consent change,
an import of customers or orders). In the write's transaction it queues a Clerk deletion for
each customer and order that left the feeds, a push (`CLERK_PUSH=all`) for each one that
entered, and moves the `updated_at` of each one that entered
(never back; `FeedChanges.keep_times` exempts times the write set itself). `Scope` says what a
write can affect, `Membership` who of it is in the feeds now. Set-based: a few queries per
`CHUNK` (500) ids, never one per row.

See docs/gdpr.md ("Writing consent: the ledger and feed membership").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone

from clerk.batching import chunked
from clerk.models import ObjectType, Reason
from clerk.outbox import queue_deletions, queue_pushes
from gdpr.policy import eligible_customers, eligible_orders
from shop.models import Customer, CustomerEmail, Order, email_key

# Keeps IN lists well under every backend's bound-parameter limit.
CHUNK = 500

# Sent by `track_feed_changes` inside the write's transaction, once its exits and entries are
# known: `exits`, `entries` (`Membership`), `now`. Receivers run in that transaction (a failure
# rolls the write back); the feeds keep their positions with it (`feeds.listing`).
feed_membership_changed = Signal()


@dataclass(frozen=True)
class Scope:
    """What a write can move in or out of the feeds."""

    customers: list[int]  # these customers and all their orders
    orders: list[int]  # these orders
    emails: list[str]  # the guest orders placed with these email keys (`shop.models.email_key`)

    @classmethod
    def around(
        cls,
        customer_ids: Iterable[int],
        *,
        order_ids: Iterable[int] = (),
        emails: Iterable[str] = (),
        stored_emails: bool = True,
    ) -> Scope:
        """The scope of a write to these customers, these orders, and customers getting these
        emails. `stored_emails`: every email the customers have had counts too (their history
        and current email, read before the write); off for a write that changes neither the
        customers nor their consent (orders)."""
        customers = sorted(set(customer_ids))
        found = {email_key(e) for e in emails} - {""}
        for batch in chunked(customers if stored_emails else [], CHUNK):
            found.update(CustomerEmail.objects.filter(customer_id__in=batch).values_list("email_key", flat=True))
            found.update(
                Customer.objects.filter(pk__in=batch).exclude(email_key="").values_list("email_key", flat=True)
            )
        return cls(customers, sorted(set(order_ids)), sorted(found))


@dataclass
class Membership:
    """The ids of a scope's customers and orders that the feeds show right now."""

    customers: set[int] = field(default_factory=set)
    orders: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, scope: Scope, *, now: dt.datetime) -> Membership:
        found = cls()
        orders = eligible_orders(now=now)
        for batch in chunked(scope.customers, CHUNK):
            found.customers.update(_ids(eligible_customers(now=now).filter(pk__in=batch)))
            found.orders.update(_ids(orders.filter(customer_id__in=batch)))
        for batch in chunked(scope.orders, CHUNK):
            found.orders.update(_ids(orders.filter(pk__in=batch)))
        for batch in chunked(scope.emails, CHUNK):
            # A seek on the index `order_email_key` (shop.models.Order).
            guests = orders.filter(customer__isnull=True, email_key__in=batch)
            found.orders.update(_ids(guests))
        return found


def _ids(queryset: QuerySet) -> Iterable[int]:
    return queryset.values_list("pk", flat=True)


@dataclass
class FeedChanges:
    """What a tracked write moved; filled when its block ends."""

    exits: Membership = field(default_factory=Membership)
    entries: Membership = field(default_factory=Membership)
    kept_customers: set[int] = field(default_factory=set)
    kept_orders: set[int] = field(default_factory=set)

    def keep_times(self, *, customers: Collection[int] = (), orders: Collection[int] = ()) -> None:
        """These objects' `updated_at` was set by the write itself: an entry among them keeps it."""
        self.kept_customers.update(customers)
        self.kept_orders.update(orders)


@contextmanager
def track_feed_changes(
    customer_ids: Iterable[int],
    *,
    reason: str,
    order_ids: Iterable[int] = (),
    emails: Iterable[str] = (),
    stored_emails: bool = True,
    touch_entries: bool = True,
) -> Iterator[FeedChanges]:
    """Queue Clerk deletions for what the block takes out of the feeds and move the `updated_at`
    of what it brings in, atomically with it.

    Usage: `with track_feed_changes(ids, reason=Reason.WITHDRAWAL) as changes: <write>`;
    afterwards `changes.exits` / `changes.entries` hold the ids that left / entered. `emails`:
    the emails the write gives the customers (their stored ones are read here unless
    `stored_emails=False`: see `Scope.around`). Both snapshots are read at one `now`, which is
    also the time entries get. `touch_entries=False` leaves every `updated_at` to an enclosing
    tracker (the importer's, which knows which times it set).
    """
    now = timezone.now()
    changes = FeedChanges()
    with transaction.atomic():
        scope = Scope.around(customer_ids, order_ids=order_ids, emails=emails, stored_emails=stored_emails)
        before = Membership.of(scope, now=now)
        yield changes
        after = Membership.of(scope, now=now)
        changes.exits = Membership(before.customers - after.customers, before.orders - after.orders)
        changes.entries = Membership(after.customers - before.customers, after.orders - before.orders)
        queue_deletions(object_type=ObjectType.CUSTOMERS, ids=changes.exits.customers, reason=reason)
        queue_deletions(object_type=ObjectType.ORDERS, ids=changes.exits.orders, reason=reason)
        # In the same transaction: the feeds' positions follow (`feeds.listing`).
        feed_membership_changed.send(sender=FeedChanges, exits=changes.exits, entries=changes.entries, now=now)
        # What entered reaches Clerk at once where CLERK_PUSH says so (clerk.push).
        queue_pushes(object_type=ObjectType.CUSTOMERS, ids=changes.entries.customers, reason=Reason.ENTERED)
        queue_pushes(object_type=ObjectType.ORDERS, ids=changes.entries.orders, reason=Reason.ENTERED)
        if touch_entries:
            _move_forward(Customer, changes.entries.customers - changes.kept_customers, now)
            _move_forward(Order, changes.entries.orders - changes.kept_orders, now)


def _move_forward(model: type[Customer] | type[Order], ids: set[int], now: dt.datetime) -> None:
    # Never back: a later change (a consent recorded a moment ago) must stay visible.
    for batch in chunked(sorted(ids), CHUNK):
        model.objects.filter(pk__in=batch, updated_at__lt=now).update(updated_at=now)
