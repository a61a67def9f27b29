"""The periodic pass for data that aged out of the window (`manage.py gdpr_sweep`).

Customers covered only by contract, and every order, leave the feeds when their data grows
older than `GDPR_RECENT_DAYS`, without any write that could queue their deletion. This pass
queues it: what the policy admitted at the previous pass's time but no longer admits now, with
today's data. Each pass remembers up to when it swept (`SweepMark`), so the next one looks only
at what aged out since, and never queues the same rows twice. Exits caused by writes
(withdrawal, erasure) are queued by those writes; this pass only sees the ones time causes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gdpr.batching import chunked
from gdpr.models import ObjectType, Reason, SweepMark
from gdpr.outbox import queue_deletions
from gdpr.policy import eligible_customers, eligible_orders

MARK = "aged_out"
READ_BATCH = 2000


@dataclass(frozen=True)
class SweepReport:
    since: dt.datetime
    until: dt.datetime
    customers: int
    orders: int

    def __str__(self) -> str:
        return (
            f"aged out between {self.since:%Y-%m-%d %H:%M} and {self.until:%Y-%m-%d %H:%M}: "
            f"{self.customers} customer(s) and {self.orders} order(s) queued for deletion at Clerk"
        )


def sweep_aged_out(*, now: dt.datetime | None = None, since: dt.datetime | None = None) -> SweepReport:
    """Queue deletions for customers and orders that aged out since the last pass.

    `since` overrides the remembered mark; the first pass ever looks back one full window
    (everything that can have aged out while the feeds were already running). Concurrent
    passes serialise on the mark's row.
    """
    now = now or timezone.now()
    with transaction.atomic():
        mark, _ = SweepMark.objects.select_for_update().get_or_create(
            name=MARK,
            defaults={"swept_until": now - dt.timedelta(days=settings.GDPR_RECENT_DAYS)},
        )
        start = since or mark.swept_until
        if start >= now:
            return SweepReport(start, now, 0, 0)
        customers = _left(
            eligible_customers(now=start), eligible_customers(now=now), ObjectType.CUSTOMERS
        )
        orders = _left(eligible_orders(now=start), eligible_orders(now=now), ObjectType.ORDERS)
        mark.swept_until = now
        mark.save(update_fields=["swept_until"])
    return SweepReport(start, now, customers, orders)


def _left(then, now, object_type: str) -> int:
    """Queue the ids in `then` but not in `now` (computed by the database); returns how many."""
    gone = then.exclude(pk__in=now.values("pk")).order_by("pk").values_list("pk", flat=True)
    queued = 0
    for batch in chunked(gone.iterator(chunk_size=READ_BATCH), READ_BATCH):
        queued += queue_deletions(object_type=object_type, ids=batch, reason=Reason.AGED_OUT)
    return queued
