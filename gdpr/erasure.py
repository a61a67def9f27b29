"""The right to erasure: anonymise a person here and make Clerk forget them, in one transaction.

What erasure does (`erase_person`):

* every customer row of the person (by id, or every row with the email) is blanked: name,
  email, zip, gender, birth date, age, business flag; `erased_at` is set, and the row stays
  because orders and the ledger point at it. Registration and terms dates stay: on an
  anonymous row they identify nobody, and they are part of the proof of the contract ground;
* every order of those customers, and every order (guest or not) placed with the email, gets
  its email blanked and `erased_at` set; the order lines stay (anonymous sales history);
* the consent records keep their proof (purpose, granted or withdrawn, when, source, who
  recorded it) but their evidence text, which may quote the person, becomes a neutral marker;
* Clerk deletions are queued in the outbox: `/privacy/forget` by email and by customer id, and
  `DELETE` of the customers and of the orders;
* an `Erasure` row records who did it and when, with counts and ids, never the email.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gdpr.batching import chunked
from gdpr.ledger import redact_evidence
from gdpr.membership import CHUNK
from gdpr.models import Erasure, ObjectType, Reason
from gdpr.outbox import queue_deletions, queue_forget
from shop.models import Customer, Order


class NothingToErase(Exception):
    """No customer or order matches the request."""


@dataclass(frozen=True)
class ErasureSummary:
    """What an erasure did. Safe to print and log: no email, no name."""

    erasure_id: int
    customers: int
    orders: int
    records_redacted: int
    deletions_queued: int

    def __str__(self) -> str:
        return (
            f"erasure {self.erasure_id}: {self.customers} customer(s) and {self.orders} order(s) "
            f"anonymised, {self.records_redacted} consent record(s) redacted, "
            f"{self.deletions_queued} Clerk deletion(s) queued"
        )


def erase_person(
    *,
    email: str | None = None,
    customer_id: int | None = None,
    requested_by=None,
    reference: str = "",
) -> ErasureSummary:
    """Erase one person, found by `email` (case-insensitive) or by `customer_id`.

    Raises `NothingToErase` when nothing matches (nothing is written then). Erasing again is
    harmless: already blank rows stay blank and the Clerk calls are idempotent.
    """
    email = (email or "").strip()
    if bool(email) == (customer_id is not None):
        raise ValueError("erase_person takes exactly one of email or customer_id")
    now = timezone.now()
    with transaction.atomic():
        customers = Customer.objects.select_for_update().order_by("pk")
        customers = customers.filter(email__iexact=email) if email else customers.filter(pk=customer_id)
        found = list(customers.values_list("pk", "email"))
        customer_ids = [pk for pk, _ in found]
        addresses = {a for a in [email or "", *(a for _, a in found)] if a}
        order_filter = Q(customer_id__in=customer_ids)
        for address in addresses:
            order_filter |= Q(email__iexact=address)
        orders = list(Order.objects.filter(order_filter).order_by("pk").values_list("pk", "email"))
        order_ids = [pk for pk, _ in orders]
        # Clerk may match emails exactly: forget every spelling it can have been sent.
        emails = addresses | {a for _, a in orders if a}
        if not customer_ids and not order_ids:
            raise NothingToErase("no customer or order matches")

        for batch in chunked(customer_ids, CHUNK):
            Customer.objects.filter(pk__in=batch).update(
                name="", email="", zip="", gender="", birth_date=None, age=None, is_b2b=None,
                erased_at=now, updated_at=now,
            )
        for batch in chunked(order_ids, CHUNK):
            Order.objects.filter(pk__in=batch).update(email="", erased_at=now, updated_at=now)
        redacted = redact_evidence(customer_ids=customer_ids, at=now)

        queued = queue_deletions(object_type=ObjectType.CUSTOMERS, ids=customer_ids, reason=Reason.ERASURE)
        queued += queue_deletions(object_type=ObjectType.ORDERS, ids=order_ids, reason=Reason.ERASURE)
        for address in sorted(emails):
            queue_forget(reason=Reason.ERASURE, email=address)
            queued += 1
        for pk in customer_ids:
            queue_forget(reason=Reason.ERASURE, customer_id=pk)
            queued += 1

        erasure = Erasure.objects.create(
            at=now,
            requested_by=requested_by,
            reference=reference,
            customer_ids=customer_ids,
            orders_erased=len(order_ids),
            records_redacted=redacted,
            deletions_queued=queued,
        )
    return ErasureSummary(erasure.pk, len(customer_ids), len(order_ids), redacted, queued)
