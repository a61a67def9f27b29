"""The right to erasure: anonymise a person here and make Clerk forget them, in one transaction.

`erase_person(email=… or customer_id=…, requested_by=None, reference="")` blanks every customer
who has or ever had the email (`shop.models.email_key`), or the given customer, and every order
linked to them; redacts their consent evidence (`gdpr.ledger.redact_evidence`); queues Clerk's
forget and delete calls; and writes an `Erasure` row (who, when, counts, ids; never the email).
It returns an `ErasureSummary` (safe to log) and raises `NothingToErase` when nothing matches.
Erasing again is harmless.

See docs/gdpr.md ("Right to erasure") for what is blanked, what stays, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clerk.batching import chunked
from clerk.models import ObjectType, Reason
from clerk.outbox import queue_deletions, queue_forget
from gdpr.ledger import redact_evidence
from gdpr.membership import CHUNK
from gdpr.models import Erasure
from shop.models import Customer, CustomerEmail, Order, email_key


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
    """Erase one person, found by `email` (any case: casefold) or by `customer_id`.

    Raises `NothingToErase` when nothing matches (nothing is written then). Erasing again is
    harmless: already blank rows stay blank and the Clerk calls are idempotent.
    """
    email = (email or "").strip()
    if bool(email) == (customer_id is not None):
        raise ValueError("erase_person takes exactly one of email or customer_id")
    now = timezone.now()
    with transaction.atomic():
        customers = _the_person(email=email, customer_id=customer_id)
        found = list(customers.select_for_update().order_by("pk").values_list("pk", "email"))
        customer_ids = [pk for pk, _ in found]
        history = _history(customer_ids)
        addresses = {a for a in [email, *(a for _, a in found), *history] if a}
        keys = {email_key(a) for a in addresses}
        order_filter = Q(customer_id__in=customer_ids)
        for batch in chunked(sorted(keys), CHUNK):
            order_filter |= Q(email_key__in=batch)
        orders = list(Order.objects.filter(order_filter).order_by("pk").values_list("pk", "email"))
        order_ids = [pk for pk, _ in orders]
        # Clerk may match emails exactly: forget every spelling it can have been sent.
        emails = addresses | {a for _, a in orders if a}
        if not customer_ids and not order_ids:
            raise NothingToErase("no customer or order matches")

        for batch in chunked(customer_ids, CHUNK):
            Customer.objects.filter(pk__in=batch).update(
                name="",
                email="",
                email_key="",
                zip="",
                gender="",
                birth_date=None,
                age=None,
                is_b2b=None,
                erased_at=now,
                updated_at=now,
            )
        for batch in chunked(order_ids, CHUNK):
            Order.objects.filter(pk__in=batch).update(email="", email_key="", erased_at=now, updated_at=now)
        # Personal data too; every order it linked to the person was erased just above.
        for batch in chunked(customer_ids, CHUNK):
            CustomerEmail.objects.filter(customer_id__in=batch).delete()
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


def _the_person(*, email: str, customer_id: int | None) -> QuerySet[Customer]:
    """The customers an erasure request names: by id, or every one who has or had the email."""
    if not email:
        return Customer.objects.filter(pk=customer_id)
    key = email_key(email)
    had = CustomerEmail.objects.filter(email_key=key).values("customer_id")
    return Customer.objects.filter(Q(email_key=key) | Q(pk__in=had))


def _history(customer_ids: list[int]) -> set[str]:
    """Every spelling of every email these customers have had."""
    found: set[str] = set()
    for batch in chunked(customer_ids, CHUNK):
        found.update(CustomerEmail.objects.filter(customer_id__in=batch).values_list("email", flat=True))
    return found
