"""Storage limitation for the outbox: keep the proof, drop the rest, in stages.

    prune_outbox(*, now, redact_after=30 d, delete_after=400 d | None, dry_run, batch_size)
    key_ranges(selection, batch_size)   primary-key ranges (lo, hi] of batch_size rows each

Only rows in a final state (`delivered`, `superseded`) whose every time is older than the cutoff
are touched: first their attempts go and their free text is blanked, later the row itself,
except the newest row of each kind. Pending and failed rows are never touched. No cutoff is
under `MIN_AGE`. Reasons (GDPR art. 5, the readers of outbox history): docs/clerk.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Max, Q, QuerySet

from clerk.models import ClerkDeletion, DeliveryAttempt, Status

logger = logging.getLogger(__name__)

# States in which a row will never be sent again.
FINAL_STATES = (Status.DELIVERED, Status.SUPERSEDED)
# The shortest age at which anything is pruned. Far above the pager's 6-hour look-back into the
# outbox (`feeds.pagination.LONGEST_WALK`; clerk may not import feeds: a test ties the two).
MIN_AGE = dt.timedelta(days=1)
DEFAULT_REDACT_AFTER = dt.timedelta(days=30)
DEFAULT_DELETE_AFTER = dt.timedelta(days=400)
# Rows per UPDATE/DELETE: bounded memory and lock time.
BATCH_SIZE = 5000


@dataclass
class OutboxPruneReport:
    redacted: int = 0
    attempts_deleted: int = 0
    rows_deleted: int = 0
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "to be " if self.dry_run else ""
        return (
            f"outbox: {self.redacted} row(s) {verb}redacted, {self.attempts_deleted} delivery "
            f"attempt(s) {verb}deleted, {self.rows_deleted} row(s) {verb}deleted"
        )


def prune_outbox(
    *,
    now: dt.datetime,
    redact_after: dt.timedelta = DEFAULT_REDACT_AFTER,
    delete_after: dt.timedelta | None = DEFAULT_DELETE_AFTER,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> OutboxPruneReport:
    """Delete old attempt logs, delete very old rows, redact old rows (module docstring).

    `dry_run` counts what would change and writes nothing (same selections, batch by batch, so
    its counts are the real run's). Raises `ValueError` for an age below `MIN_AGE`, a
    `delete_after` shorter than `redact_after`, or a batch size below 1.
    """
    if redact_after < MIN_AGE:
        raise ValueError(f"redact_after must be at least {MIN_AGE}")
    if delete_after is not None and delete_after < redact_after:
        raise ValueError("delete_after must be at least redact_after")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")

    redact_cutoff = now - redact_after
    delete_cutoff = now - delete_after if delete_after is not None else None
    keep = newest_of_each_kind() if delete_cutoff is not None else []
    report = OutboxPruneReport(dry_run=dry_run)
    # One walk over the settled rows in primary-key ranges of `batch_size` of them. Each
    # statement names its range and repeats the conditions (no long id lists to send).
    for lo, hi in key_ranges(settled(redact_cutoff), batch_size):
        in_range = Q(pk__gt=lo, pk__lte=hi)
        rows = settled(redact_cutoff).filter(in_range)
        doomed = ClerkDeletion.objects.none()
        if delete_cutoff is not None:
            doomed = settled(delete_cutoff).filter(in_range).exclude(pk__in=keep)
        # Attempts first, so that deleting their rows cascades to nothing.
        attempts = DeliveryAttempt.objects.filter(
            Q(deletion__in=rows, started_at__lt=redact_cutoff) | Q(deletion__in=doomed),
            deletion_id__gt=lo,
            deletion_id__lte=hi,
        )
        report.attempts_deleted += _delete(attempts, batch_size, dry_run=dry_run).get(_ATTEMPT, 0)
        removed = _delete(doomed, batch_size, dry_run=dry_run)
        report.rows_deleted += removed.get(_DELETION, 0)
        report.attempts_deleted += removed.get(_ATTEMPT, 0)
        to_redact = rows.exclude(pk__in=doomed).filter(~Q(email="") | ~Q(last_error=""))
        report.redacted += to_redact.count() if dry_run else to_redact.update(email="", last_error="")
    if not dry_run:
        logger.info(
            "outbox pruned",
            extra={
                "redacted": report.redacted,
                "attempts_deleted": report.attempts_deleted,
                "rows_deleted": report.rows_deleted,
            },
        )
    return report


# --- selections --------------------------------------------------------------------------------
def settled(cutoff: dt.datetime) -> QuerySet[ClerkDeletion]:
    """Rows in a final state whose every time (queued, due or leased, delivered) is before `cutoff`."""
    return ClerkDeletion.objects.filter(
        Q(delivered_at__isnull=True) | Q(delivered_at__lt=cutoff),
        status__in=FINAL_STATES,
        created_at__lt=cutoff,
        next_attempt_at__lt=cutoff,
    )


def newest_of_each_kind() -> list[int]:
    """Ids of the newest row (by `created_at`) of each kind: forget, and delete per object type.

    One grouped query plus one lookup; rows tied at the newest instant are all kept.
    """
    newest = ClerkDeletion.objects.values("action", "object_type").annotate(at=Max("created_at")).order_by()
    kinds = Q(pk__in=[])
    for group in newest:
        kinds |= Q(action=group["action"], object_type=group["object_type"], created_at=group["at"])
    return list(ClerkDeletion.objects.filter(kinds).values_list("pk", flat=True))


# --- batches -----------------------------------------------------------------------------------
def key_ranges(selection: QuerySet, batch_size: int) -> Iterator[tuple[int, int]]:
    """Primary-key ranges `(lo, hi]` holding `batch_size` of the selection's rows each (the
    last fewer), ascending, each computed after the previous one was handled.

    A statement over `pk > lo AND pk <= hi` plus the selection's conditions touches at most
    those rows (rows that change state meanwhile can only leave a selection of settled rows)
    and is an index range scan; a list of 5,000 ids would cost more to send than to run.
    """
    last = 0
    while ids := list(selection.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size]):
        yield last, ids[-1]
        last = ids[-1]


_DELETION = ClerkDeletion._meta.label
_ATTEMPT = DeliveryAttempt._meta.label


def _delete(selection: QuerySet, batch_size: int, *, dry_run: bool) -> dict[str, int]:
    """Delete (or count) the selection's rows, `batch_size` at most per DELETE; the counts per
    model label, cascades included."""
    if dry_run:
        return {selection.model._meta.label: selection.count()}
    deleted: dict[str, int] = {}
    for lo, hi in key_ranges(selection, batch_size):
        _, per_model = selection.filter(pk__gt=lo, pk__lte=hi).delete()
        for label, count in per_model.items():
            deleted[label] = deleted.get(label, 0) + count
    return deleted
