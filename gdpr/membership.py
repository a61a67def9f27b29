"""Who is in the customers and orders feeds, before and after a change: the exits to delete.

Clerk keeps whatever a feed stops showing (incremental imports never delete), so every write
that can take a customer or an order out of the feeds wraps itself in `queue_feed_exits`: it
reads the feed membership of the affected customers before and after, in the same transaction,
and queues a Clerk deletion for each object that left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from gdpr.batching import chunked
from gdpr.models import ObjectType
from gdpr.outbox import queue_deletions
from gdpr.policy import eligible_customers, eligible_orders

# Keeps IN lists well under every backend's bound-parameter limit.
CHUNK = 500


@dataclass
class Membership:
    """The ids of the given customers, and of their orders, that the feeds show right now."""

    customers: set[int] = field(default_factory=set)
    orders: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, customer_ids: Iterable[int], *, now: dt.datetime | None = None) -> Membership:
        found = cls()
        for batch in chunked(sorted(set(customer_ids)), CHUNK):
            found.customers.update(
                eligible_customers(now=now).filter(pk__in=batch).values_list("pk", flat=True)
            )
            found.orders.update(
                eligible_orders(now=now).filter(customer_id__in=batch).values_list("pk", flat=True)
            )
        return found


@dataclass
class Exits:
    customers: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)


@contextmanager
def queue_feed_exits(customer_ids: Iterable[int], *, reason: str) -> Iterator[Exits]:
    """Queue Clerk deletions for what the block takes out of the feeds, atomically with it.

    Usage: `with queue_feed_exits(ids, reason=Reason.WITHDRAWAL) as exits: <write>`; afterwards
    `exits` holds the ids that left. The membership is read at one `now` for both snapshots.
    """
    ids = sorted(set(customer_ids))
    now = timezone.now()
    exits = Exits()
    with transaction.atomic():
        before = Membership.of(ids, now=now)
        yield exits
        after = Membership.of(ids, now=now)
        exits.customers = sorted(before.customers - after.customers)
        exits.orders = sorted(before.orders - after.orders)
        queue_deletions(object_type=ObjectType.CUSTOMERS, ids=exits.customers, reason=reason)
        queue_deletions(object_type=ObjectType.ORDERS, ids=exits.orders, reason=reason)
