"""Property tests: the policy's querysets equal an independent statement of DESIGN.md's rule."""

from __future__ import annotations

import datetime as dt

from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from gdpr.models import ConsentRecord, Source
from gdpr.policy import Reason, eligible_customers, eligible_orders, with_eligibility
from shop.models import Customer, Order, email_key, record_emails
from tests.gdpr import policy_oracle as oracle

# Day offsets before "now" that sit on and around both windows' edges, so ties and boundaries
# are common rather than lucky; negative ones lie in the future (-1: exactly the day allowed).
DAY_OFFSETS = [-27000, -2, -1, 0, 1, 29, 30, 31, 400, 729, 730, 731, 1500]
# A few shared instants per world: consent records often tie on `at`.
CONSENT_OFFSETS = [1, 5, 5, 40, 800]
# Few addresses, in several spellings (and none): guest orders often share a customer's email.
# Casefold is not lower(): "STRASSE" and "straße" are one, "Élise" and "élise" are one (SQLite's
# LOWER() folds ASCII only), and "İ" folds to "i̇" (i and a combining dot), not to "i".
EMAILS = [
    "ada@example.com",
    "ADA@Example.com",
    "bo@example.com",
    "Bo@example.COM",
    "",
    "Élise.Obj@example.com",
    "élise.obj@example.com",
    "STRASSE@example.com",
    "straße@example.com",
    "İnci@example.com",
    "i̇nci@example.com",
    "inci@example.com",
]

consent_st = st.tuples(
    st.sampled_from([oracle.SHARING, oracle.MARKETING]),
    st.booleans(),
    st.sampled_from(CONSENT_OFFSETS),
)
customer_st = st.fixed_dictionaries(
    {
        "registered": st.one_of(st.none(), st.sampled_from(DAY_OFFSETS)),
        "terms": st.booleans(),
        "erased": st.booleans(),
        "email": st.sampled_from(EMAILS),
        "previous_emails": st.lists(st.sampled_from(EMAILS), max_size=2),
        "consents": st.lists(consent_st, max_size=4),
    }
)
order_st = st.fixed_dictionaries(
    {
        "customer": st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
        "placed": st.sampled_from(DAY_OFFSETS),
        "terms": st.booleans(),
        "erased": st.booleans(),
        "email": st.sampled_from(EMAILS),
    }
)
world_st = st.fixed_dictionaries(
    {
        "customers": st.lists(customer_st, max_size=6),
        "orders": st.lists(order_st, max_size=8),
        "days": st.sampled_from([30, 730]),
    }
)


def build(world, now):
    """Write the world to the database and return the oracle's view of it."""
    ago = lambda days: now - dt.timedelta(days=days)  # noqa: E731
    people, seq = [], 0
    customers, records, history = [], [], []
    for i, spec in enumerate(world["customers"], start=1):
        registered = ago(spec["registered"]) if spec["registered"] is not None else None
        terms = registered if (registered and spec["terms"]) else (ago(3) if spec["terms"] else None)
        # An erased customer's email and email history are gone (`gdpr.erasure`).
        email = "" if spec["erased"] else spec["email"]
        person = oracle.Person(i, registered, terms, spec["erased"], email, previous_emails=spec["previous_emails"])
        customers.append(
            Customer(
                id=i,
                name=f"C{i}",
                email=email,
                email_key=email_key(email),
                registered_at=registered,
                terms_accepted_at=terms,
                erased_at=ago(0) if spec["erased"] else None,
            )
        )
        history += [(i, e) for e in person.emails]
        for purpose, granted, offset in spec["consents"]:
            seq += 1
            person.consents.append(oracle.Consent(purpose, granted, ago(offset), seq))
            records.append(
                ConsentRecord(customer_id=i, purpose=purpose, granted=granted, at=ago(offset), source=Source.IMPORT)
            )
        people.append(person)
    Customer.objects.bulk_create(customers)
    record_emails(history)
    for record in records:  # one by one: ids follow the oracle's insertion order
        record.save()
    purchases, orders = [], []
    for j, spec in enumerate(world["orders"], start=1):
        owner = people[spec["customer"]] if spec["customer"] is not None and spec["customer"] < len(people) else None
        terms = ago(spec["placed"]) if spec["terms"] else None
        purchases.append(oracle.Purchase(j, owner, ago(spec["placed"]), terms, spec["erased"], spec["email"]))
        orders.append(
            Order(
                id=j,
                customer_id=owner.id if owner else None,
                email=spec["email"],
                email_key=email_key(spec["email"]),
                placed_at=ago(spec["placed"]),
                terms_accepted_at=terms,
                erased_at=ago(0) if spec["erased"] else None,
            )
        )
    Order.objects.bulk_create(orders)
    return people, purchases


class PolicyMatchesDesign(TestCase):
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=world_st, purpose=st.sampled_from(["personalisation", "marketing"]))
    def test_eligible_customers_and_orders_equal_the_independent_rule(self, world, purpose):
        now = timezone.now().replace(microsecond=0)
        with override_settings(GDPR_RECENT_DAYS=world["days"], CLERK_DATA_PURPOSE=purpose):
            people, purchases = build(world, now)
            kw = {"now": now, "purpose": purpose, "days": world["days"]}
            expected_customers = {p.id for p in people if oracle.customer_in_feed(p, purchases, **kw)}
            expected_orders = {o.id for o in purchases if oracle.order_in_feed(o, purchases, people=people, **kw)}

            got = {c.pk: c for c in eligible_customers(now=now, purpose=purpose)}
            assert set(got) == expected_customers
            assert set(eligible_orders(now=now, purpose=purpose).values_list("pk", flat=True)) == expected_orders
            by_id = {p.id: p for p in people}
            for pk, customer in got.items():
                # `subscribed` is the latest marketing record being a grant.
                assert (customer.marketing_consent is True) == oracle.subscribed(by_id[pk])

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=world_st, purpose=st.sampled_from(["personalisation", "marketing"]))
    def test_no_customer_without_a_legal_basis_ever_appears(self, world, purpose):
        now = timezone.now().replace(microsecond=0)
        with override_settings(GDPR_RECENT_DAYS=world["days"]):
            people, purchases = build(world, now)
            window = {"now": now, "days": world["days"]}
            by_id = {p.id: p for p in people}
            for pk in eligible_customers(now=now, purpose=purpose).values_list("pk", flat=True):
                p = by_id[pk]
                sharing = oracle.latest_state(p, oracle.SHARING)
                assert not p.erased
                assert sharing is not False, "an objection must exclude on every ground"
                if sharing is None:
                    assert purpose == "personalisation"
                    assert p.registered_at and p.terms_accepted_at
                    assert oracle.in_window(p.registered_at, **window) or any(
                        o.customer is p and oracle.in_window(o.placed_at, **window) for o in purchases
                    )
            for order in eligible_orders(now=now, purpose=purpose):
                assert oracle.in_window(order.placed_at, **window) and order.erased_at is None
                if order.customer_id is None:
                    assert purpose == "personalisation" and order.terms_accepted_at is not None
                    # An objector's guest orders (any email they have had, casefolded) never appear.
                    assert not any(
                        oracle.objected(p) for p in people if any(oracle.same_email(e, order.email) for e in p.emails)
                    )
                else:
                    assert order.customer_id in set(
                        eligible_customers(now=now, purpose=purpose).values_list("pk", flat=True)
                    )

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=world_st, purpose=st.sampled_from(["personalisation", "marketing"]))
    def test_admin_in_feed_column_and_reason_agree_with_the_feed(self, world, purpose):
        now = timezone.now().replace(microsecond=0)
        with override_settings(GDPR_RECENT_DAYS=world["days"]):
            build(world, now)
            feed = set(eligible_customers(now=now, purpose=purpose).values_list("pk", flat=True))
            for row in with_eligibility(Customer.objects.all(), now=now, purpose=purpose).values(
                "pk", "in_feed", "eligibility_code"
            ):
                assert row["in_feed"] == (row["pk"] in feed)
                assert (row["eligibility_code"] in Reason.IN_FEED) == row["in_feed"]
