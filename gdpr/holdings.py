"""What Clerk may hold of the personal feeds (customers, orders): the one home of `ClerkHolding`.

    record_handed_out(*, object_type, ids)  before a feed hands `ids` out: one statement
    forget_held(*, object_type, ids)        when their deletion is queued (`gdpr.outbox`)
    held_ids(*, object_type, after, size)   the held ids in key order, one batch (the sweep)
    hold_superseded()                       hold again what a dropped deletion left at Clerk

A row means "Clerk may hold this object and no deletion of it has been queued since". Holding
too much is harmless (deleting an id Clerk never had costs one id in a call); holding too little
would leave personal data at Clerk, so every write fails loudly. See docs/gdpr.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
from django.db import connections, router
from django.db.models import Exists, OuterRef
from django.utils import timezone

from clerk.models import Action, ClerkDeletion, ObjectType, Status
from gdpr.models import ClerkHolding

PERSONAL = (ObjectType.CUSTOMERS, ObjectType.ORDERS)


def _check_type(object_type: str) -> None:
    if object_type not in PERSONAL:
        raise ValueError(f"Clerk holdings are kept for {PERSONAL}, not {object_type!r}")


def record_handed_out(*, object_type: str, ids: Sequence[int]) -> None:
    """Hold `ids` (already held: unchanged). One statement whatever their number; in autocommit
    it is committed when this returns, so call it before the objects' bytes are produced."""
    _check_type(object_type)
    if not ids:
        return
    using = router.db_for_write(ClerkHolding)
    connection = connections[using]
    table = connection.ops.quote_name(ClerkHolding._meta.db_table)
    since = connection.ops.adapt_datetimefield_value(timezone.now())
    if connection.vendor == "postgresql":
        # The anti-join skips ids already held (the steady state of repeated walks) at an index
        # probe each, cheaper than a speculative insertion; ON CONFLICT covers a concurrent page.
        sql = (
            f"INSERT INTO {table} (object_type, object_id, since) "
            "SELECT %s, id, %s FROM unnest(%s::bigint[]) AS id "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} h WHERE h.object_type = %s AND h.object_id = id) "
            "ON CONFLICT DO NOTHING"
        )
        params = [object_type, since, list(ids), object_type]
    elif connection.vendor == "sqlite":
        sql = f"INSERT OR IGNORE INTO {table} (object_type, object_id, since) SELECT %s, value, %s FROM json_each(%s)"
        params = [object_type, since, orjson.dumps(list(ids)).decode()]
    else:  # any other database: Django's portable form (may split into several statements)
        ClerkHolding.objects.using(using).bulk_create(
            [ClerkHolding(object_type=object_type, object_id=pk, since=timezone.now()) for pk in ids],
            ignore_conflicts=True,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def forget_held(*, object_type: str, ids: Iterable[int]) -> None:
    """A deletion of `ids` has been queued: Clerk is about to lose them. Call inside the queueing
    transaction, so the holding and the deletion commit or roll back together."""
    _check_type(object_type)
    ClerkHolding.objects.filter(object_type=object_type, object_id__in=list(ids)).delete()


def held_ids(*, object_type: str, after: int | None, size: int) -> list[int]:
    """Up to `size` held ids of `object_type` above `after` (None: from the first), ascending."""
    _check_type(object_type)
    held = ClerkHolding.objects.filter(object_type=object_type)
    if after is not None:
        held = held.filter(object_id__gt=after)
    return list(held.order_by("object_id").values_list("object_id", flat=True)[:size])


def hold_superseded() -> int:
    """Hold again every customer and order whose latest deletion the worker dropped as
    `superseded` (back in the feeds at send time): Clerk kept it. Returns how many ids."""
    later = ClerkDeletion.objects.filter(
        action=Action.DELETE,
        object_type=OuterRef("object_type"),
        object_id=OuterRef("object_id"),
        pk__gt=OuterRef("pk"),
    )
    dropped = (
        ClerkDeletion.objects.filter(action=Action.DELETE, status=Status.SUPERSEDED, object_type__in=PERSONAL)
        .exclude(Exists(later))
        .values_list("object_type", "object_id")
    )
    by_type: dict[str, list[int]] = {}
    for object_type, object_id in dropped:
        by_type.setdefault(object_type, []).append(object_id)
    for object_type, ids in by_type.items():
        record_handed_out(object_type=object_type, ids=ids)
    return sum(len(ids) for ids in by_type.values())
