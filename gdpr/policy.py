"""Who and what may be handed to Clerk: the one statement of the GDPR policy.

Every feed, the single feed, the admin and the commands read eligibility from here; nobody
filters again. The rule (DESIGN.md, "GDPR policy"):

* A customer is eligible when they hold explicit `third_party_sharing` consent (their latest
  record for that purpose is a grant), or, under purpose `personalisation` only, when they are
  covered by contract (registered and accepted the terms) and their data is recent
  (registration or last order within `GDPR_RECENT_DAYS`).
* A latest `third_party_sharing` record that is a withdrawal is an objection: it excludes the
  customer on every ground, the contract included.
* An erased customer is never eligible.
* An order is eligible when it was placed within the window and its customer is eligible; a
  guest order (no customer) only under `personalisation`, by the terms accepted at checkout.

Everything is computed in the database: the clauses are named `Q` objects over annotations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gdpr.models import ConsentRecord, Purpose
from shop.models import Customer, Order

PERSONALISATION = "personalisation"
MARKETING = "marketing"
DATA_PURPOSES = (PERSONALISATION, MARKETING)


@dataclass(frozen=True)
class PolicyContext:
    """The inputs of the policy at one moment: when, for what purpose, how far back."""

    now: dt.datetime
    purpose: str
    recent_days: int

    @property
    def window_start(self) -> dt.datetime:
        return self.now - dt.timedelta(days=self.recent_days)

    @classmethod
    def current(cls, *, now: dt.datetime | None = None, purpose: str | None = None) -> PolicyContext:
        purpose = purpose or settings.CLERK_DATA_PURPOSE
        if purpose not in DATA_PURPOSES:
            # Fail closed: an unknown purpose must never widen what is shared.
            raise ValueError(f"Unknown CLERK_DATA_PURPOSE {purpose!r}; use one of {DATA_PURPOSES}.")
        return cls(
            now=now or timezone.now(),
            purpose=purpose,
            recent_days=settings.GDPR_RECENT_DAYS,
        )


def _latest_consent(purpose: str) -> Subquery:
    """The customer's latest record for `purpose`: True (grant), False (withdrawal), NULL (none)."""
    return Subquery(
        ConsentRecord.objects.filter(customer=OuterRef("pk"), purpose=purpose)
        .order_by("-at", "-id")
        .values("granted")[:1],
        output_field=BooleanField(),
    )


def with_consent_state(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """Annotate `sharing_consent` and `marketing_consent` (True / False / None)."""
    return customers.annotate(
        sharing_consent=_latest_consent(Purpose.THIRD_PARTY_SHARING),
        marketing_consent=_latest_consent(Purpose.MARKETING),
    )


def _customer_clauses(ctx: PolicyContext) -> dict[str, Q]:
    """The named clauses the customer rule is built from (over `with_consent_state`)."""
    recent_order = Exists(
        Order.objects.filter(customer=OuterRef("pk"), placed_at__gte=ctx.window_start)
    )
    return {
        # Erasure ends every ground for good.
        "not_erased": Q(erased_at__isnull=True),
        # Explicit, current consent to sharing with Clerk.
        "explicit_consent": Q(sharing_consent=True),
        # No sharing record at all: neither a consent nor an objection.
        "no_sharing_record": Q(sharing_consent__isnull=True),
        # Covered by contract: registered and accepted the shop's terms.
        "contract": Q(registered_at__isnull=False, terms_accepted_at__isnull=False),
        # Recent data: registered, or ordered, within the window.
        "recent": Q(registered_at__gte=ctx.window_start) | Q(recent_order),
    }


def customer_eligibility_q(ctx: PolicyContext) -> Q:
    """The whole customer rule as one `Q` over `with_consent_state(...)`."""
    c = _customer_clauses(ctx)
    if ctx.purpose == MARKETING:
        # Marketing needs explicit consent; the contract is no ground for it.
        grounds = c["explicit_consent"]
    else:
        # An objection (latest sharing record is a withdrawal) is neither clause, so it excludes.
        grounds = c["explicit_consent"] | (c["no_sharing_record"] & c["contract"] & c["recent"])
    return c["not_erased"] & grounds


def eligible_customers(
    *, now: dt.datetime | None = None, purpose: str | None = None
) -> QuerySet[Customer]:
    """Customers who may be handed to Clerk, annotated with their consent state."""
    ctx = PolicyContext.current(now=now, purpose=purpose)
    return with_consent_state(Customer.objects.all()).filter(customer_eligibility_q(ctx))


def eligible_orders(*, now: dt.datetime | None = None, purpose: str | None = None) -> QuerySet[Order]:
    """Orders that may be handed to Clerk."""
    ctx = PolicyContext.current(now=now, purpose=purpose)
    in_window = Q(placed_at__gte=ctx.window_start)
    not_erased = Q(erased_at__isnull=True)
    customer_eligible = Q(customer_id__in=eligible_customers(now=ctx.now, purpose=ctx.purpose).values("pk"))
    if ctx.purpose == PERSONALISATION:
        # A guest cannot have given explicit consent: only the terms accepted at checkout count.
        guest_by_terms = Q(customer__isnull=True, terms_accepted_at__isnull=False)
        grounds = customer_eligible | guest_by_terms
    else:
        grounds = customer_eligible
    return Order.objects.filter(in_window & not_erased & grounds)


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str


def eligibility_reason(
    customer: Customer, *, now: dt.datetime | None = None, purpose: str | None = None
) -> Eligibility:
    """Say whether `customer` is in the customers feed and why, for the admin and audits.

    The verdict is read from the database through the same `Q` as the feeds, so the reason can
    never disagree with what the feeds do.
    """
    ctx = PolicyContext.current(now=now, purpose=purpose)
    row = (
        with_consent_state(Customer.objects.filter(pk=customer.pk))
        .annotate(_in=_as_bool(customer_eligibility_q(ctx)))
        .values("sharing_consent", "_in", "erased_at", "registered_at", "terms_accepted_at")
        .first()
    )
    if row is None:
        return Eligibility(False, str(_("unknown customer")))
    eligible = bool(row["_in"])
    if row["erased_at"] is not None:
        return Eligibility(False, str(_("erased")))
    if row["sharing_consent"] is True:
        return Eligibility(eligible, str(_("explicit consent to sharing")))
    if row["sharing_consent"] is False:
        return Eligibility(False, str(_("objection: sharing consent withdrawn")))
    if ctx.purpose == MARKETING:
        return Eligibility(False, str(_("no explicit consent (required for marketing)")))
    if row["registered_at"] is None or row["terms_accepted_at"] is None:
        return Eligibility(False, str(_("no contract: not registered or terms not accepted")))
    if eligible:
        return Eligibility(True, str(_("contract, recent data")))
    return Eligibility(False, str(_("contract, but data older than %(days)s days")) % {"days": ctx.recent_days})


def _as_bool(q: Q) -> ExpressionWrapper:
    return ExpressionWrapper(q, output_field=BooleanField())
