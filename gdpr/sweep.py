"""Reconciliation by state (`manage.py gdpr_sweep`, and `clerk_sync --loop` at start and hourly).

Every customer and order Clerk may hold is in the holdings (`gdpr.holdings`). This pass walks
them by key range, batch by batch, and queues the deletion of every one the policy does not
admit now, whatever took it out of the feeds: a setting (`CLERK_DATA_PURPOSE`,
`GDPR_RECENT_DAYS`), the passage of time, a change no write queued. Queueing removes the ids
from the holdings, so nothing is queued twice. The pass then records the settings it reconciled
under (`SweepMark`), which `clerk_check` compares with the running ones. See docs/gdpr.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from clerk.models import ObjectType, Reason
from clerk.outbox import queue_deletions
from gdpr.holdings import held_ids, hold_superseded
from gdpr.models import SweepMark
from gdpr.policy import PolicyContext, eligible_customers, eligible_orders

MARK = "reconciled"
BATCH = 5000
POLICY = {ObjectType.CUSTOMERS: eligible_customers, ObjectType.ORDERS: eligible_orders}


@dataclass(frozen=True)
class SweepReport:
    at: dt.datetime
    purpose: str
    recent_days: int
    held: int
    customers: int
    orders: int

    def __str__(self) -> str:
        return (
            f"reconciled {self.held} held object(s) with the policy ({self.purpose}, "
            f"{self.recent_days} days) at {self.at:%Y-%m-%d %H:%M}: {self.customers} customer(s) "
            f"and {self.orders} order(s) queued for deletion at Clerk"
        )


def sweep(*, now: dt.datetime | None = None, batch_size: int = BATCH) -> SweepReport:
    """Queue the deletion of every held customer and order the policy does not admit at `now`.

    Each batch is its own transaction (a pass over millions of rows never holds locks for
    long); concurrent passes are harmless (`queue_deletions` never queues a pending id twice).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be ≥ 1")
    ctx = PolicyContext.current(now=now)  # an unknown purpose fails here, before any write
    hold_superseded()
    held, queued = 0, {}
    for object_type, eligible in POLICY.items():
        admitted_now = eligible(now=ctx.now, purpose=ctx.purpose)
        queued[object_type], after = 0, None
        while ids := held_ids(object_type=object_type, after=after, size=batch_size):
            held, after = held + len(ids), ids[-1]
            admitted = set(admitted_now.filter(pk__in=ids).values_list("pk", flat=True))
            gone = [pk for pk in ids if pk not in admitted]
            if gone:
                with transaction.atomic():
                    queued[object_type] += queue_deletions(object_type=object_type, ids=gone, reason=Reason.LEFT_FEED)
    SweepMark.objects.update_or_create(
        name=MARK, defaults={"swept_at": ctx.now, "purpose": ctx.purpose, "recent_days": ctx.recent_days}
    )
    return SweepReport(
        ctx.now, ctx.purpose, ctx.recent_days, held, queued[ObjectType.CUSTOMERS], queued[ObjectType.ORDERS]
    )


# --- selectors ---------------------------------------------------------------------------------
def last_sweep() -> SweepMark | None:
    """The last completed pass: when, and under which settings."""
    return SweepMark.objects.filter(name=MARK).first()


def unreconciled_settings(mark: SweepMark) -> list[str]:
    """The running settings that differ from those `mark` reconciled under (empty: none)."""
    running = {"CLERK_DATA_PURPOSE": settings.CLERK_DATA_PURPOSE, "GDPR_RECENT_DAYS": settings.GDPR_RECENT_DAYS}
    swept = {"CLERK_DATA_PURPOSE": mark.purpose, "GDPR_RECENT_DAYS": mark.recent_days}
    return [
        f"{name} is {running[name]!r}, swept under {swept[name]!r}" for name in running if running[name] != swept[name]
    ]
