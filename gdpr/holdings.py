"""What Clerk may hold of the personal feeds (customers, orders): the one home of `ClerkHolding`.

    record_handed_out(*, object_type, ids)  before a feed hands `ids` out: one statement
    forget_held(*, object_type, ids)        when their deletion is queued (`clerk.outbox`)
    held_ids(*, object_type, after, size)   the held ids in key order, one batch (the sweep)
    hold_superseded()                       hold again what a dropped deletion left at Clerk

An id is held from its hand-out until its deletion is queued. Holding too much is harmless (one
id more in a deletion call); holding too little would leave data at Clerk, so writes fail loudly.
Ids are kept as bits of 64-id blocks, so a page's recording touches a few rows. See docs/gdpr.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import orjson
from django.db import connections, router
from django.db.models import BigIntegerField, Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from clerk.models import Action, ClerkDeletion, ObjectType, Status
from gdpr.models import ClerkHolding

PERSONAL = (ObjectType.CUSTOMERS, ObjectType.ORDERS)
BLOCK = 64
_FORGET_BATCH = 500  # blocks per UPDATE (bounded parameters on every database)


def _check_type(object_type: str) -> None:
    if object_type not in PERSONAL:
        raise ValueError(f"Clerk holdings are kept for {PERSONAL}, not {object_type!r}")


def _signed(mask: int) -> int:
    """A 64-bit mask as the signed integer a BIGINT column stores."""
    return mask - (1 << 64) if mask >= 1 << 63 else mask


def _blocks(ids: Iterable[int]) -> dict[int, int]:
    """{block: signed mask of its ids} for `ids`."""
    masks: dict[int, int] = defaultdict(int)
    for pk in ids:
        masks[pk // BLOCK] |= 1 << (pk % BLOCK)
    return {block: _signed(mask) for block, mask in masks.items()}


def record_handed_out(*, object_type: str, ids: Sequence[int]) -> None:
    """Hold `ids` (already held: unchanged). One statement whatever their number; in autocommit
    it is committed when this returns, so call it before the objects' bytes are produced."""
    _check_type(object_type)
    if not ids:
        return
    masks = _blocks(ids)
    using = router.db_for_write(ClerkHolding)
    connection = connections[using]
    table = connection.ops.quote_name(ClerkHolding._meta.db_table)
    since = connection.ops.adapt_datetimefield_value(timezone.now())
    # The steady state of repeated walks is "every bit already set": the join filters those
    # blocks out at one index probe each, before any row is locked or written.
    upsert = (
        f"ON CONFLICT (object_type, block) DO UPDATE SET bits = {table}.bits | excluded.bits "
        f"WHERE ({table}.bits | excluded.bits) <> {table}.bits"
    )
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} (object_type, block, bits, since) "
            "SELECT %s, u.b, u.m, %s FROM unnest(%s::bigint[], %s::bigint[]) AS u(b, m) "
            # LATERAL … LIMIT 1: an index probe per block whatever the statistics say (a hash
            # of the whole table is what a stale estimate would otherwise choose).
            f"LEFT JOIN LATERAL (SELECT h.bits FROM {table} h WHERE h.object_type = %s AND h.block = u.b "
            f"LIMIT 1) h ON true WHERE h.bits IS NULL OR (h.bits | u.m) <> h.bits {upsert}"
        )
        params = [object_type, since, list(masks), list(masks.values()), object_type]
    elif connection.vendor == "sqlite":
        sql = (
            f"INSERT INTO {table} (object_type, block, bits, since) "
            "SELECT %s, json_extract(value, '$[0]'), json_extract(value, '$[1]'), %s FROM json_each(%s) "
            f"WHERE true {upsert}"
        )
        params = [object_type, since, orjson.dumps(list(masks.items())).decode()]
    else:  # any other database: Django's portable form, a statement per block
        for block, mask in masks.items():
            row, created = ClerkHolding.objects.using(using).get_or_create(
                object_type=object_type, block=block, defaults={"bits": mask, "since": timezone.now()}
            )
            if not created:
                ClerkHolding.objects.using(using).filter(pk=row.pk).update(bits=F("bits").bitor(mask))
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def forget_held(*, object_type: str, ids: Iterable[int]) -> None:
    """A deletion of `ids` has been queued: Clerk is about to lose them. Call inside the queueing
    transaction, so the holding and the deletion commit or roll back together."""
    _check_type(object_type)
    masks = list(_blocks(ids).items())
    held = ClerkHolding.objects.filter(object_type=object_type)
    for start in range(0, len(masks), _FORGET_BATCH):
        part = masks[start : start + _FORGET_BATCH]
        blocks = [block for block, _ in part]
        cleared = Case(
            *(
                When(block=block, then=F("bits").bitand(Value(~mask, output_field=BigIntegerField())))
                for block, mask in part
            ),
            default=F("bits"),
            output_field=BigIntegerField(),
        )
        held.filter(block__in=blocks).update(bits=cleared)
        held.filter(block__in=blocks, bits=0).delete()


def held_ids(*, object_type: str, after: int | None, size: int) -> list[int]:
    """Up to `size` held ids of `object_type` above `after` (None: from the first), ascending."""
    _check_type(object_type)
    held = ClerkHolding.objects.filter(object_type=object_type)
    if after is not None:
        held = held.filter(block__gte=(after + 1) // BLOCK)
    ids: list[int] = []
    # Every stored block holds at least one id, so `size` blocks always hold `size` ids.
    for block, bits in held.order_by("block").values_list("block", "bits")[:size]:
        base = block * BLOCK
        ids.extend(base + i for i in range(BLOCK) if bits & (1 << i) and (after is None or base + i > after))
        if len(ids) >= size:
            break
    return ids[:size]


def is_held(*, object_type: str, object_id: int) -> bool:
    """Whether Clerk may hold this one object (a check for tests and the admin)."""
    _check_type(object_type)
    bits = (
        ClerkHolding.objects.filter(object_type=object_type, block=object_id // BLOCK)
        .values_list("bits", flat=True)
        .first()
    )
    return bits is not None and bool(bits & (1 << (object_id % BLOCK)))


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
