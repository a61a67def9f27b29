"""Writing to and reading from the Clerk deletion outbox (`clerk.models.ClerkDeletion`).

    queue_deletions(*, object_type, ids, reason)    DELETE /<type> for ids; returns rows queued
    queue_forget(*, reason, email= | customer_id=)   POST /privacy/forget for one person
    latest_deletion_time(), pending_count(), failed_count(), deletion_queued_since(type, since)

Writers call these inside the transaction of the change that makes a deletion necessary, so the
change and its deletion commit or roll back together; so does the layer above's
`clerk.hooks.on_deletions_queued` hook. Delivery is `clerk.delivery`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from clerk import hooks
from clerk.batching import chunked
from clerk.models import Action, ClerkDeletion, ObjectType, Status

INSERT_BATCH = 1000


def queue_deletions(*, object_type: str, ids: Iterable[int], reason: str) -> int:
    """Queue `DELETE /<object_type>` for `ids`; returns how many rows were queued.

    An id that already has a pending deletion is not queued again (deleting twice would be
    harmless, but the outbox stays small). That pending row is locked until the caller's
    transaction ends: a worker deciding at this moment that the row is `superseded` (it saw
    the object still in the feeds) either finishes first, and the row is no longer pending, so
    a new one is queued here, or skips the locked row and sees the object gone once this
    transaction commits. Without the lock, this deletion could be lost.

    For customers and orders, the `on_deletions_queued` hook runs in the same transaction (gdpr
    drops them from its holdings: Clerk is about to lose them); without it this raises
    `clerk.hooks.HookMissing` and queues nothing.
    """
    if object_type not in ObjectType.values:
        raise ValueError(f"unknown Clerk object type {object_type!r}")
    queued = 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # the lock lives as long as the caller's transaction
        for batch in chunked(sorted(set(ids)), INSERT_BATCH):
            queued += _queue_batch(object_type=object_type, ids=batch, reason=reason, now=now)
            hooks.deletions_queued(object_type, batch)
    return queued


def _queue_batch(*, object_type: str, ids: list[int], reason: str, now: dt.datetime) -> int:
    pending = set(
        ClerkDeletion.objects.select_for_update()
        .filter(
            action=Action.DELETE,
            object_type=object_type,
            object_id__in=ids,
            status=Status.PENDING,
        )
        .values_list("object_id", flat=True)
    )
    rows = [
        ClerkDeletion(
            action=Action.DELETE,
            object_type=object_type,
            object_id=object_id,
            reason=reason,
            created_at=now,
            next_attempt_at=now,
        )
        for object_id in ids
        if object_id not in pending
    ]
    ClerkDeletion.objects.bulk_create(rows)
    return len(rows)


def queue_forget(*, reason: str, email: str = "", customer_id: int | None = None) -> ClerkDeletion:
    """Queue `POST /privacy/forget` for one person, by email or by customer id (exactly one)."""
    if bool(email) == (customer_id is not None):
        raise ValueError("queue_forget takes exactly one of email or customer_id")
    now = timezone.now()
    return ClerkDeletion.objects.create(
        action=Action.FORGET,
        email=email,
        object_id=customer_id,
        reason=reason,
        created_at=now,
        next_attempt_at=now,
    )


# --- selectors ---------------------------------------------------------------------------------
def latest_deletion_time() -> dt.datetime | None:
    """When the newest deletion was queued: a deletion is a change of the feeds' content.

    The single feed's `config.created` takes the max of this and the tables' `updated_at`.
    """
    return ClerkDeletion.objects.aggregate(latest=Max("created_at"))["latest"]


def pending_count() -> int:
    return ClerkDeletion.objects.filter(status=Status.PENDING).count()


def failed_count() -> int:
    return ClerkDeletion.objects.filter(status=Status.FAILED).count()


def deletion_queued_since(object_type: str, since: dt.datetime) -> bool:
    """Whether an `object_type` object may have been deleted at or after `since`.

    Every deletion of a shop object goes through `queue_deletions`, which queues a row, or,
    when the id already has a pending row, relies on that one. So this is true when a `delete`
    of that type was queued since `since`, or when an older one may have stood for a later
    deletion: a row still pending, or one delivered or failed since (a claim sets
    `next_attempt_at` to the end of its lease, which the acknowledgement comes within; a refusal
    sets it to the next try). A true may be a false alarm, a false never is. One query, on the
    `created_at` index and on `outbox_due` (status, next_attempt_at).
    """
    changed = (
        Q(created_at__gte=since)
        | Q(status=Status.PENDING)
        | Q(status__in=[Status.DELIVERED, Status.FAILED], next_attempt_at__gte=since)
    )
    return ClerkDeletion.objects.filter(changed, action=Action.DELETE, object_type=object_type).exists()
