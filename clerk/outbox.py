"""Writing to and reading from the Clerk outbox (`clerk.models.ClerkDeletion`).

    queue_deletions(*, object_type, ids, reason) -> queued; queue_pushes(*, object_type, ids)
    queue_forget(*, reason, email= | customer_id=); import_pushes(push=); retry_now(rows)
    latest_deletion_time(), pending_count(), failed_count(), deletion_queued_since(type, since)

Writers call these inside the transaction of the change (so does `on_deletions_queued`): the
change and its outbox row commit or roll back together. One pending row per object holds its
latest intent, push or delete; queueing coalesces into it and moves its `version`. Pushes
follow `CLERK_PUSH` (`clerk.push`). Delivery is `clerk.delivery`; reasons in docs/clerk.md.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from clerk import hooks
from clerk.batching import chunked
from clerk.models import OBJECT_ACTIONS, Action, ClerkDeletion, ObjectType, Reason, Status
from clerk.push import pushed_types
from shop.models import Category, Customer, Order, Page, Product

INSERT_BATCH = 1000
# An import that changed more than this share of a type's rows queues no push of that type:
# Clerk's next import reads the whole feed anyway, at a fraction of the cost (docs/clerk.md).
IMPORT_PUSH_SHARE = 0.10
MODELS = {
    ObjectType.PRODUCTS: Product,
    ObjectType.CATEGORIES: Category,
    ObjectType.PAGES: Page,
    ObjectType.CUSTOMERS: Customer,
    ObjectType.ORDERS: Order,
}


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
    _coalesce(Action.DELETE, object_type=object_type, ids=ids, reason=reason, now=now)
    return len(ids) - len(pending)


def queue_pushes(*, object_type: str, ids: Iterable[int], reason: str = Reason.CHANGED) -> int:
    """Queue `POST /<object_type>` of the current objects `ids` (rendered at delivery time);
    returns how many ids were queued or collected (0 when `CLERK_PUSH` leaves the type out).

    Coalesced: an object with a pending push keeps that one row (its `version` moves, so a push
    already in flight is sent again); a pending deletion becomes a push (the latest intent
    wins), except an erasure's, which nothing replaces. Inside `import_pushes` the ids are
    collected instead, and queued (or not) when the import ends.
    """
    if object_type not in ObjectType.values:
        raise ValueError(f"unknown Clerk object type {object_type!r}")
    if object_type not in pushed_types():
        return 0
    ids = sorted(set(ids))
    collector = _collecting.get()
    if collector is not None:
        collector.add(object_type, ids)
        return len(ids)
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        for batch in chunked(ids, INSERT_BATCH):
            _coalesce(Action.PUSH, object_type=object_type, ids=batch, reason=reason, now=now)
    return len(ids)


def _coalesce(action: str, *, object_type: str, ids: list[int], reason: str, now: dt.datetime) -> None:
    """Insert the intent `action` for `ids`, or fold it into the object's pending row.

    One statement (an upsert on the partial unique index `outbox_one_pending_intent`), so two
    transactions queueing the same object never make two rows: the second waits for the first
    and folds into its row. A pending deletion is left as it is by a deletion (and locked), and
    by any push when it is an erasure's; everything else takes the new intent, moves `version`
    (the worker acknowledges only the version it sent), and, when the action changes, its
    reason and queueing time and a fresh count of refusals. `next_attempt_at` is kept: a row in
    flight keeps its lease, one backing off keeps its wait.
    """
    if not ids:
        return
    using = router.db_for_write(ClerkDeletion)
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(ClerkDeletion._meta.db_table)
    when = connection.ops.adapt_datetimefield_value(now)
    values = ", ".join(["(%s, %s, %s, '', %s, 'pending', %s, %s, 0, 0, '', 0)"] * len(ids))
    params: list = []
    for object_id in ids:
        params += [action, object_type, object_id, reason, when, when]
    same = f"{table}.action = excluded.action"
    # Only the quoted table name and placeholders are interpolated; every value is a parameter.
    # The conflict target repeats the index's condition in its order (SQLite matches it so).
    sql = (
        f"INSERT INTO {table} (action, object_type, object_id, email, reason, status, created_at, "  # noqa: S608
        f"next_attempt_at, attempts, refusals, last_error, version) VALUES {values} "
        f"ON CONFLICT (object_type, object_id) WHERE action IN ('delete', 'push') AND status = 'pending' "
        f"DO UPDATE SET version = {table}.version + 1, "
        f"reason = CASE WHEN {same} THEN {table}.reason ELSE excluded.reason END, "
        f"created_at = CASE WHEN {same} THEN {table}.created_at ELSE excluded.created_at END, "
        f"refusals = 0, last_error = '', action = excluded.action "
        f"WHERE NOT ({table}.action = 'delete' AND (excluded.action = 'delete' OR {table}.reason = %s))"
    )
    params.append(Reason.ERASURE)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def retry_now(rows: QuerySet[ClerkDeletion]) -> int:
    """Make these failed or pending rows due now, refusals forgotten; returns how many.

    A failed row whose object has another pending intent stays failed: that newer intent is
    what Clerk must get (and two pending rows of one object cannot exist). Retrying an older
    intent is safe anyway: a push is rendered when sent, a deletion of a served object dropped.
    """
    newer = ClerkDeletion.objects.filter(
        status=Status.PENDING,
        action__in=OBJECT_ACTIONS,
        object_type=OuterRef("object_type"),
        object_id=OuterRef("object_id"),
    )
    count = 0
    with transaction.atomic():
        retried = rows.filter(Q(status=Status.FAILED) | Q(status=Status.PENDING))
        failed_intents = retried.filter(status=Status.FAILED, action__in=OBJECT_ACTIONS)
        # Of several failed rows of one object, the newest is retried: one pending intent.
        keep = failed_intents.exclude(Exists(newer)).order_by("object_type", "object_id", "-id")
        seen: set[tuple[str, int]] = set()
        skip: list[int] = []
        for pk, object_type, object_id in keep.values_list("pk", "object_type", "object_id"):
            if (object_type, object_id) in seen:
                skip.append(pk)
            seen.add((object_type, object_id))
        skip += list(failed_intents.filter(Exists(newer)).values_list("pk", flat=True))
        now = timezone.now()
        count = retried.exclude(pk__in=skip).update(status=Status.PENDING, next_attempt_at=now, refusals=0)
    return count


# --- an import's pushes ------------------------------------------------------------------------
@dataclass
class ImportPushes:
    """The pushes of one import: collected while it runs, decided when it ends (`lines`)."""

    push: bool = True
    changed: dict[str, array] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    queued: dict[str, int] = field(default_factory=dict)

    def add(self, object_type: str, ids: Iterable[int]) -> None:
        self.changed.setdefault(object_type, array("q")).extend(ids)

    def finish(self) -> None:
        for object_type, ids in self.changed.items():
            unique = sorted(set(ids))
            if not unique:
                continue
            if not self.push:
                self.lines.append(f"{object_type}: {len(unique)} changed, no push queued (--no-push)")
                continue
            total = MODELS[object_type]._default_manager.count()
            if len(unique) > IMPORT_PUSH_SHARE * total:
                self.lines.append(
                    f"{object_type}: {len(unique)} of {total} changed, over {IMPORT_PUSH_SHARE:.0%}: no push "
                    "queued (Clerk's next import of the feed brings them)"
                )
                continue
            queued = 0
            for batch in chunked(unique, INSERT_BATCH * 10):
                with transaction.atomic():
                    queued += queue_pushes(object_type=object_type, ids=batch)
            self.queued[object_type] = queued
            self.lines.append(f"{object_type}: {queued} push(es) queued for Clerk")


_collecting: ContextVar[ImportPushes | None] = ContextVar("clerk_import_pushes", default=None)


@contextmanager
def import_pushes(*, push: bool = True) -> Iterator[ImportPushes]:
    """Collect the pushes queued inside the block (an import) and decide them at its end: none
    with `push=False` (`import_shop --no-push`), none of a type whose changed rows exceed
    `IMPORT_PUSH_SHARE` of its table, the others queued. `lines` says which, per type.

    A process that dies before the end queues none: Clerk's next import brings those changes.
    """
    scope = ImportPushes(push=push)
    token = _collecting.set(scope)
    try:
        yield scope
    finally:
        _collecting.reset(token)
    scope.finish()


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
    return ClerkDeletion.objects.exclude(action=Action.PUSH).aggregate(latest=Max("created_at"))["latest"]


def pending_count() -> int:
    return ClerkDeletion.objects.filter(status=Status.PENDING).exclude(action=Action.PUSH).count()


def failed_count() -> int:
    return ClerkDeletion.objects.filter(status=Status.FAILED).exclude(action=Action.PUSH).count()


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
