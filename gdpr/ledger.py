"""Writes to the consent ledger. Records are only ever added; see `gdpr.models.ConsentRecord`.

`record_consent` / `record_consents` (a list of `ConsentChange`) are the only ways consent
changes: in one transaction they append the records, move the `updated_at` of what the change
concerns and queue Clerk deletions for what it took out of the feeds. A record's time is capped
at the moment it is recorded (`capped_at`; up to `MAX_CLOCK_SKEW` ahead is accepted).
`redact_evidence` is the one path that alters existing records, for erasure only.

See docs/gdpr.md ("Writing consent: the ledger and feed membership").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clerk.batching import chunked
from clerk.models import Reason
from gdpr.membership import CHUNK, track_feed_changes
from gdpr.models import REDACTED_EVIDENCE, ConsentRecord, Purpose, Source
from shop.models import Customer, Order

# How far in the future a record's time may lie (clock skew between the shop and us). A record
# dated later would outrank every real record until then: a typo must not become consent. One
# within the skew is stored at its recording time (`capped_at`).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


def capped_at(at: dt.datetime, recorded: dt.datetime) -> dt.datetime:
    """The time a record claiming `at` is stored with when recorded at `recorded`.

    Nothing can have happened after it was recorded: a grant dated by a clock running ahead
    would otherwise outrank a real withdrawal made after it, until the clocks met, and forever
    in the ledger's order.
    """
    return min(at, recorded)


@dataclass(frozen=True)
class ConsentChange:
    """One record to append: who, for what, granted or withdrawn, when, how we know."""

    customer_id: int
    purpose: str
    granted: bool
    at: dt.datetime
    source: str
    evidence: str = ""


def record_consent(
    *,
    customer: Customer | int,
    purpose: str,
    granted: bool,
    at: dt.datetime,
    source: str,
    evidence: str,
    recorded_by=None,
) -> ConsentRecord:
    """Append one consent record (a grant or a withdrawal) and apply its consequences.

    Raises `ValidationError` for an unknown purpose or source, a naive `at` or one more than
    `MAX_CLOCK_SKEW` ahead, an unknown or erased customer. An `at` after the recording moment is
    stored as that moment (`capped_at`).
    """
    customer_id = customer.pk if isinstance(customer, Customer) else int(customer)
    change = ConsentChange(customer_id, purpose, granted, at, source, evidence)
    return record_consents([change], recorded_by=recorded_by)[0]


def record_consents(changes: Sequence[ConsentChange], *, recorded_by=None, touch: bool = True) -> list[ConsentRecord]:
    """Append many records at once, in one transaction, in a fixed number of queries per 500
    customers; returns the new records in the given order.

    `touch=False` leaves `updated_at` alone, for a caller that stores the shop's own times and
    tracks feed entries itself (the importer); Clerk deletions for objects that left the feeds
    are queued either way.
    """
    if not changes:
        return []
    now = timezone.now()
    for change in changes:
        _validate(change, now=now)
    customer_ids = sorted({c.customer_id for c in changes})
    with transaction.atomic():
        _lock_live_customers(customer_ids)
        with track_feed_changes(customer_ids, reason=Reason.WITHDRAWAL, touch_entries=touch):
            recorded = timezone.now()
            records = ConsentRecord.objects.bulk_create(
                ConsentRecord(
                    customer_id=c.customer_id,
                    purpose=c.purpose,
                    granted=c.granted,
                    at=capped_at(c.at, recorded),
                    source=c.source,
                    evidence=c.evidence,
                    recorded_by=recorded_by,
                )
                for c in changes
            )
        if touch:
            sharing_ids = sorted({c.customer_id for c in changes if c.purpose == Purpose.THIRD_PARTY_SHARING})
            _touch(customer_ids, sharing_ids, now=now)
    return records


def redact_evidence(*, customer_ids: Sequence[int], at: dt.datetime) -> int:
    """Replace the evidence of the customers' records by a neutral marker; for erasure only.

    The records themselves (purpose, granted, when, source, who recorded it) stay: they prove
    that consent existed without saying whose it was once the customer row is anonymised. The
    database trigger allows exactly this update and nothing else. Returns how many records
    were redacted (already redacted ones are left alone).
    """
    redacted = 0
    for batch in chunked(sorted(set(customer_ids)), CHUNK):
        # The base manager's queryset is Django's own, not the append-only one: this is the
        # single sanctioned write to existing records.
        redacted += ConsentRecord._base_manager.filter(customer_id__in=batch, redacted_at__isnull=True).update(
            evidence=REDACTED_EVIDENCE, redacted_at=at
        )
    return redacted


# --- helpers -----------------------------------------------------------------------------------
def _validate(change: ConsentChange, *, now: dt.datetime) -> None:
    if change.purpose not in Purpose.values:
        raise ValidationError(_("Unknown consent purpose."), code="unknown_purpose")
    if change.source not in Source.values:
        raise ValidationError(_("Unknown consent source."), code="unknown_source")
    check_consent_time(change.at, now=now)


def check_consent_time(at: dt.datetime, *, now: dt.datetime) -> None:
    """A record's time must be aware and not in the future (a form checks it with its other fields)."""
    if not isinstance(at, dt.datetime) or timezone.is_naive(at):
        raise ValidationError(_("The consent time must include a time zone."), code="naive_time")
    if at > now + MAX_CLOCK_SKEW:
        raise ValidationError(_("The consent time lies in the future."), code="future_time")


def _lock_live_customers(customer_ids: list[int]) -> None:
    """Lock the customers' rows (in id order: no deadlocks) and refuse unknown or erased ones.

    The lock serialises concurrent consent changes of one customer, so each change's before
    and after membership is exact and no deletion is missed.
    """
    for batch in chunked(customer_ids, CHUNK):
        rows = dict(
            Customer.objects.select_for_update().filter(pk__in=batch).order_by("pk").values_list("pk", "erased_at")
        )
        missing = [pk for pk in batch if pk not in rows]
        if missing:
            raise ValidationError(_("Unknown customer id %(id)s."), code="unknown_customer", params={"id": missing[0]})
        if any(erased_at is not None for erased_at in rows.values()):
            # An erased person is gone; no record may ever bring them back.
            raise ValidationError(_("The customer has been erased."), code="erased_customer")


def _touch(customer_ids: list[int], sharing_ids: list[int], *, now: dt.datetime) -> None:
    for batch in chunked(customer_ids, CHUNK):
        Customer.objects.filter(pk__in=batch).update(updated_at=now)
    # Order eligibility follows the customer's sharing consent, not the marketing one.
    for batch in chunked(sharing_ids, CHUNK):
        Order.objects.filter(customer_id__in=batch).update(updated_at=now)
