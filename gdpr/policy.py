"""Who and what may be handed to Clerk: the one statement of the GDPR policy (DESIGN.md).

Every feed, the single feed, the admin and the commands read eligibility from here; nobody
filters again. Public: `eligible_customers`, `eligible_orders`, `customer_eligibility_q`,
`order_eligibility_q`, `guest_of_an_objector`, `latest_consent`, `with_consent_state`,
`with_eligibility`, `eligibility_reason` / `Reason` / `reason_label` (why in or out),
`PolicyContext` (now, purpose, window; `FUTURE_SLACK`). Everything is computed in the database,
as named `Q` clauses evaluated per row.

See docs/gdpr.md ("The policy in plain words") for the rule and its proof.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import IsNull, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gdpr.models import ConsentRecord, Purpose
from shop.models import Customer, CustomerEmail, Order

PERSONALISATION = "personalisation"
MARKETING = "marketing"
DATA_PURPOSES = (PERSONALISATION, MARKETING)
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)

# How far ahead of now a time may lie and still count (clocks differ, time zones get mixed up).
# Later than that it is a mistake in the data, and must not keep a person in the feeds until then.
FUTURE_SLACK = dt.timedelta(days=1)


class Unindexed(Func):
    """A column's value, which SQLite answers without its index (`+column`); itself elsewhere."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="+%(expressions)s", **extra_context)


@dataclass(frozen=True)
class PolicyContext:
    """The inputs of the policy at one moment: when, for what purpose, how far back."""

    now: dt.datetime
    purpose: str
    recent_days: int

    @property
    def window_start(self) -> dt.datetime:
        try:
            return self.now - dt.timedelta(days=self.recent_days)
        except OverflowError:  # a window reaching before year 1 (gdpr.E003 refuses it at deploy)
            return EARLIEST

    @property
    def window_end(self) -> dt.datetime:
        return self.now + FUTURE_SLACK

    def in_window(self, field: str) -> Q:
        """`field` lies within the window: from `window_start` to `window_end`.

        The upper bound is `Unindexed`: with both bounds, SQLite reckons the range selective and
        walks a feed's orders by `placed_at`, sorting the whole window for each page, where the
        lower bound alone lets it walk them by id and stop at a page (PostgreSQL plans by its
        statistics, and the wrapper changes nothing there)."""
        column = Unindexed(F(field), output_field=DateTimeField())
        return Q(**{f"{field}__gte": self.window_start}) & Q(LessThanOrEqual(column, self.window_end))

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


# --- consent state -----------------------------------------------------------------------------
def latest_consent(purpose: str, *, customer_ref: str = "pk") -> Subquery:
    """The latest record for `purpose` of the customer at `customer_ref`: True, False or NULL.

    Ties in `at` go to the withdrawal (False sorts first ascending, so "granted" ascending):
    when two records claim the same instant we cannot know which came last, so we fail closed.
    """
    return Subquery(
        ConsentRecord.objects.filter(customer_id=OuterRef(customer_ref), purpose=purpose)
        .order_by("-at", "granted", "-id")
        .values("granted")[:1],
        output_field=BooleanField(),
    )


def with_consent_state(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """Annotate `sharing_consent` and `marketing_consent` (True / False / None)."""
    return customers.annotate(
        sharing_consent=latest_consent(Purpose.THIRD_PARTY_SHARING),
        marketing_consent=latest_consent(Purpose.MARKETING),
    )


# --- the customer rule -------------------------------------------------------------------------
def _customer_clauses(ctx: PolicyContext) -> dict[str, Q]:
    """The named clauses the customer rule is built from (over `with_consent_state`)."""
    recent_order = Exists(Order.objects.filter(ctx.in_window("placed_at"), customer_id=OuterRef("pk")))
    future_order = Exists(Order.objects.filter(customer_id=OuterRef("pk"), placed_at__gt=ctx.window_end))
    return {
        # Erasure ends every ground for good.
        "not_erased": Q(erased_at__isnull=True),
        # Explicit, current consent to sharing with Clerk.
        "explicit_consent": Q(sharing_consent=True),
        # An objection: the latest sharing record is a withdrawal. It beats every other ground.
        "objection": Q(sharing_consent=False),
        # No sharing record at all: neither a consent nor an objection.
        "no_sharing_record": Q(sharing_consent__isnull=True),
        # Covered by contract: registered and accepted the shop's terms.
        "contract": Q(registered_at__isnull=False, terms_accepted_at__isnull=False),
        # Recent data: registered, or ordered, within the window (never later than now + a day).
        "recent": ctx.in_window("registered_at") | Q(recent_order),
        # Dated in the future: no ground, but the admin says why (`Reason.CONTRACT_FUTURE`).
        "future": Q(registered_at__gt=ctx.window_end) | Q(future_order),
    }


def customer_eligibility_q(ctx: PolicyContext) -> Q:
    """The whole customer rule as one `Q` over `with_consent_state(...)`."""
    c = _customer_clauses(ctx)
    if ctx.purpose == MARKETING:
        # Marketing needs explicit consent; the contract is no ground for it.
        grounds = c["explicit_consent"]
    else:
        # An objection is neither clause, so it excludes.
        grounds = c["explicit_consent"] | (c["no_sharing_record"] & c["contract"] & c["recent"])
    return c["not_erased"] & grounds


def eligible_customers(*, now: dt.datetime | None = None, purpose: str | None = None) -> QuerySet[Customer]:
    """Customers who may be handed to Clerk, annotated with their consent state.

    Annotations: `sharing_consent`, `marketing_consent` (True/False/None); `subscribed` is
    `marketing_consent is True`.
    """
    ctx = PolicyContext.current(now=now, purpose=purpose)
    return with_consent_state(Customer.objects.all()).filter(customer_eligibility_q(ctx))


# --- the order rule ----------------------------------------------------------------------------
def guest_of_an_objector() -> Exists:
    """True for a guest order whose email key is one that a customer who objected has had.

    Per guest order, a seek on the email history's `(email_key, customer)` index
    (`shop.models.CustomerEmail`) and, per customer found, the "latest sharing record" seek.
    A blank key links to nobody (the history holds none; erasure deletes a person's history).
    """
    return Exists(
        CustomerEmail.objects.alias(
            sharing_consent=latest_consent(Purpose.THIRD_PARTY_SHARING, customer_ref="customer_id"),
        )
        .filter(email_key=OuterRef("email_key"), sharing_consent=False)
        # Only guest orders are concerned (a registered order follows its own customer). Said
        # here, inside the probe, it also keeps PostgreSQL from swapping the per-row index seek
        # for a hash of every objector, which would compute the consent state of every customer
        # on each feed page: a condition on the outer row other than `outer = inner` cannot be
        # hashed.
        .filter(IsNull(OuterRef("customer_id"), True))
    )


def order_eligibility_q(ctx: PolicyContext) -> Q:
    """The order rule as one `Q` over an `Order` queryset annotated with `customer_sharing_consent`.

    It restates the customer rule through the order's customer (a join by primary key and one
    index seek per row) rather than `customer_id IN (eligible customers)`, which would make the
    database evaluate the whole customer rule for every page of the orders feed. The customer's
    recency is implied: an order inside the window is itself a recent order of its customer.
    """
    in_window = ctx.in_window("placed_at")
    not_erased = Q(erased_at__isnull=True)
    customer_explicit = Q(customer_sharing_consent=True)
    customer_contract = (
        Q(customer_sharing_consent__isnull=True)
        & Q(customer__registered_at__isnull=False)
        & Q(customer__terms_accepted_at__isnull=False)
    )
    registered = Q(customer__isnull=False, customer__erased_at__isnull=True)
    if ctx.purpose == PERSONALISATION:
        # A guest cannot have given explicit consent: only the terms accepted at checkout count.
        # An objection covers the person, not only their account: the guest orders placed with
        # an objector's email stay out (Clerk would link them to the person by email).
        guest_by_terms = Q(customer__isnull=True, terms_accepted_at__isnull=False) & ~Q(guest_of_an_objector())
        grounds = (registered & (customer_explicit | customer_contract)) | guest_by_terms
    else:
        grounds = registered & customer_explicit
    return in_window & not_erased & grounds


def eligible_orders(*, now: dt.datetime | None = None, purpose: str | None = None) -> QuerySet[Order]:
    """Orders that may be handed to Clerk."""
    ctx = PolicyContext.current(now=now, purpose=purpose)
    orders = Order.objects.annotate(
        customer_sharing_consent=latest_consent(Purpose.THIRD_PARTY_SHARING, customer_ref="customer_id")
    )
    return orders.filter(order_eligibility_q(ctx))


# --- why: reasons for the admin and audits -----------------------------------------------------
class Reason:
    """Stable codes for why a customer is in or out of the customers feed."""

    ERASED = "erased"
    EXPLICIT_CONSENT = "explicit_consent"
    OBJECTION = "objection"
    NO_EXPLICIT_CONSENT = "no_explicit_consent"
    NO_CONTRACT = "no_contract"
    CONTRACT_RECENT = "contract_recent"
    CONTRACT_STALE = "contract_stale"
    CONTRACT_FUTURE = "contract_future"

    IN_FEED = frozenset({EXPLICIT_CONSENT, CONTRACT_RECENT})


REASON_LABELS = {
    Reason.ERASED: _("erased"),
    Reason.EXPLICIT_CONSENT: _("explicit consent to sharing"),
    Reason.OBJECTION: _("objection: sharing consent withdrawn"),
    Reason.NO_EXPLICIT_CONSENT: _("no explicit consent (required for marketing)"),
    Reason.NO_CONTRACT: _("no contract: not registered or terms not accepted"),
    Reason.CONTRACT_RECENT: _("contract, recent data"),
    Reason.CONTRACT_STALE: _("contract, but data older than %(days)s days"),
    Reason.CONTRACT_FUTURE: _("contract, but no recent data: its dates lie more than a day in the future"),
}


def reason_label(code: str, *, recent_days: int | None = None) -> str:
    """The human sentence for a reason code, in the active language."""
    days = settings.GDPR_RECENT_DAYS if recent_days is None else recent_days
    label = str(REASON_LABELS.get(code, code))
    return label % {"days": days} if "%(days)s" in label else label


def _reason_case(ctx: PolicyContext) -> Case:
    """The reason code as a SQL CASE, first matching ground wins (same clauses as the rule)."""
    c = _customer_clauses(ctx)
    whens = [
        When(~c["not_erased"], then=Value(Reason.ERASED)),
        When(c["explicit_consent"], then=Value(Reason.EXPLICIT_CONSENT)),
        When(c["objection"], then=Value(Reason.OBJECTION)),
    ]
    if ctx.purpose == MARKETING:
        whens.append(When(Q(pk__isnull=False), then=Value(Reason.NO_EXPLICIT_CONSENT)))
    else:
        whens += [
            When(~c["contract"], then=Value(Reason.NO_CONTRACT)),
            When(c["recent"], then=Value(Reason.CONTRACT_RECENT)),
            When(c["future"], then=Value(Reason.CONTRACT_FUTURE)),
        ]
    return Case(*whens, default=Value(Reason.CONTRACT_STALE), output_field=CharField())


def with_eligibility(
    customers: QuerySet[Customer], *, now: dt.datetime | None = None, purpose: str | None = None
) -> QuerySet[Customer]:
    """Annotate consent state, `in_feed` (bool), `eligibility_code` and `is_recent` in SQL.

    For lists (the admin's changelist): a fixed number of queries however many rows.
    """
    ctx = PolicyContext.current(now=now, purpose=purpose)
    c = _customer_clauses(ctx)
    return with_consent_state(customers).annotate(
        in_feed=_as_bool(customer_eligibility_q(ctx)),
        eligibility_code=_reason_case(ctx),
        is_recent=_as_bool(c["recent"]),
    )


def _as_bool(q: Q) -> Case:
    """A `Q` as a true/false column. Not `ExpressionWrapper(q)`: in SQL a clause over a NULL
    (no consent record) is NULL, which would be neither "in" nor "out" of the feed."""
    return Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str
    code: str = ""


def eligibility_reason(
    customer: Customer, *, now: dt.datetime | None = None, purpose: str | None = None
) -> Eligibility:
    """Say whether `customer` is in the customers feed and why, for the admin and audits.

    The verdict and the reason are read from the database through the same clauses as the
    feeds, so the reason can never disagree with what the feeds do.
    """
    ctx = PolicyContext.current(now=now, purpose=purpose)
    row = (
        with_eligibility(Customer.objects.filter(pk=customer.pk), now=ctx.now, purpose=ctx.purpose)
        .values("in_feed", "eligibility_code")
        .first()
    )
    if row is None:
        return Eligibility(False, str(_("unknown customer")), "unknown")
    code = row["eligibility_code"]
    return Eligibility(bool(row["in_feed"]), reason_label(code, recent_days=ctx.recent_days), code)
