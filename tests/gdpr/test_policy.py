"""The policy on named examples: each DESIGN.md sentence, and why a customer is in or out."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr.ledger import record_consent
from gdpr.models import ConsentRecord, Purpose, Source
from gdpr.policy import PolicyContext, eligibility_reason, eligible_customers, eligible_orders, with_eligibility
from shop.models import Customer, Order, email_key, record_emails
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def days_ago(n):
    return timezone.now() - dt.timedelta(days=n)


def page(feed, *, limit, offset, client="importer", now=None, modified_after=None):
    params = FeedParams(limit=limit, offset=offset, modified_after=modified_after)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


def test_contract_customer_is_eligible_and_withdrawal_is_an_objection():
    c = CustomerFactory()
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, granted=False)
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "objection"


def test_guest_order_by_terms_only_under_personalisation():
    o = OrderFactory(customer=None, terms_accepted_at=timezone.now())
    assert list(eligible_orders()) == [o]
    assert list(eligible_orders(purpose="marketing")) == []


def test_guest_order_without_terms_is_excluded():
    OrderFactory(customer=None, terms_accepted_at=None)
    assert list(eligible_orders()) == []


def test_old_customer_with_recent_order_is_eligible():
    c = CustomerFactory(registered_at=days_ago(2000))
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "contract_stale"
    OrderFactory(customer=c)
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, purpose=Purpose.MARKETING)
    assert eligible_customers().get().marketing_consent is True


def test_explicit_consent_holds_whatever_the_age_but_old_orders_stay_out():
    c = CustomerFactory(registered_at=days_ago(3000), terms_accepted_at=None)
    old = OrderFactory(customer=c, placed_at=days_ago(1000))
    ConsentRecordFactory(customer=c, at=days_ago(2500))
    assert list(eligible_customers()) == [c]
    assert list(eligible_orders()) == []
    new = OrderFactory(customer=c, placed_at=days_ago(3))
    assert list(eligible_orders()) == [new]
    assert old not in eligible_orders()


def test_marketing_purpose_needs_explicit_consent():
    c = CustomerFactory()
    OrderFactory(customer=c)
    assert list(eligible_customers(purpose="marketing")) == []
    assert eligibility_reason(c, purpose="marketing").code == "no_explicit_consent"
    ConsentRecordFactory(customer=c)
    assert list(eligible_customers(purpose="marketing")) == [c]
    assert eligible_orders(purpose="marketing").count() == 1


def test_marketing_consent_alone_is_no_ground_for_sharing():
    c = CustomerFactory(terms_accepted_at=None)
    ConsentRecordFactory(customer=c, purpose=Purpose.MARKETING)
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "no_contract"


def test_regrant_after_withdrawal_restores_and_latest_by_time_wins():
    c = CustomerFactory()
    ConsentRecordFactory(customer=c, granted=False, at=days_ago(2))
    ConsentRecordFactory(customer=c, granted=True, at=days_ago(1))
    assert list(eligible_customers()) == [c]
    # A record entered later but dated earlier does not change the state.
    ConsentRecordFactory(customer=c, granted=False, at=days_ago(5))
    assert list(eligible_customers()) == [c]


def test_withdrawal_wins_a_tie_in_time():
    c = CustomerFactory()
    at = days_ago(1)
    ConsentRecordFactory(customer=c, granted=False, at=at)
    ConsentRecordFactory(customer=c, granted=True, at=at)
    assert list(eligible_customers()) == []


def test_erased_customer_is_never_eligible_nor_their_orders():
    c = CustomerFactory(erased_at=timezone.now())
    ConsentRecordFactory(customer=c)
    OrderFactory(customer=c)
    assert list(eligible_customers()) == []
    assert list(eligible_orders()) == []
    assert eligibility_reason(c).code == "erased"


def test_window_edge_is_inclusive():
    now = timezone.now()
    ctx = PolicyContext.current(now=now)
    c = CustomerFactory(registered_at=ctx.window_start)
    assert list(eligible_customers(now=now)) == [c]
    assert list(eligible_customers(now=now + dt.timedelta(seconds=1))) == []


def test_unknown_purpose_fails_closed():
    with pytest.raises(ValueError):
        list(eligible_customers(purpose="analytics"))


def test_reason_is_translated(settings):
    from django.utils import translation

    c = CustomerFactory()
    with translation.override("it"):
        assert eligibility_reason(c).reason == "contratto, dati recenti"


# --- an objection covers the person's guest orders ---------------------------------------------
def test_guest_order_with_the_email_of_a_customer_who_objected_is_sent_with_that_email():
    """An objection "excludes the customer on every ground, the contract included", yet the same
    person's guest orders (placed with their email) go to Clerk, email and all, on the checkout
    terms: Clerk links them to the person by email."""
    customer = CustomerFactory(email="objector@example.com")
    record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=False,
        at=timezone.now() - dt.timedelta(minutes=1),
        source=Source.ACCOUNT,
        evidence="objected",
    )
    OrderFactory(id=500, customer=None, email="objector@example.com", terms_accepted_at=timezone.now())
    assert page("customers", limit=10, offset=0) == []
    sent = orjson.loads(b"".join(feed_chunks("orders", params=FeedParams())))
    assert [o.get("email") for o in sent if o["id"] == 500] != ["objector@example.com"]


def test_an_objectors_guest_orders_are_out_whatever_the_case_of_the_email():
    c = CustomerFactory(email="Mario.Rossi@Example.com")
    guest = OrderFactory(customer=None, email="mario.rossi@EXAMPLE.COM", terms_accepted_at=timezone.now())
    other = OrderFactory(customer=None, email="someone.else@example.com", terms_accepted_at=timezone.now())
    assert set(eligible_orders()) == {guest, other}
    ConsentRecordFactory(customer=c, granted=False)
    assert list(eligible_orders()) == [other]
    # The customer's admin row says why they are out; their guest orders follow the same verdict.
    row = with_eligibility(Customer.objects.filter(pk=c.pk)).values("in_feed", "eligibility_code").get()
    assert row == {"in_feed": False, "eligibility_code": "objection"}
    ConsentRecordFactory(customer=c, granted=True, at=timezone.now())
    assert set(eligible_orders()) == {guest, other}


def test_only_an_objection_keeps_the_guest_orders_out():
    no_record = CustomerFactory(email="a@example.com", terms_accepted_at=None)  # not eligible, no objection
    consenting = CustomerFactory(email="b@example.com")
    ConsentRecordFactory(customer=consenting, granted=True)
    ConsentRecordFactory(customer=no_record, purpose=Purpose.MARKETING, granted=False)  # not the sharing purpose
    guests = {
        OrderFactory(customer=None, email=e, terms_accepted_at=timezone.now())
        for e in ("a@example.com", "B@example.com")
    }
    assert set(eligible_orders()) == guests


def test_a_registered_order_follows_its_own_customer_not_the_email():
    objector = CustomerFactory(email="shared@example.com")
    ConsentRecordFactory(customer=objector, granted=False)
    order = OrderFactory(customer=CustomerFactory(), email="shared@example.com")
    assert list(eligible_orders()) == [order]


def test_a_blank_email_links_a_guest_order_to_nobody():
    erased = CustomerFactory(email="", erased_at=timezone.now())
    ConsentRecordFactory(customer=erased, granted=False)
    guest = OrderFactory(customer=None, email="", terms_accepted_at=timezone.now())
    assert list(eligible_orders()) == [guest]


def test_the_guest_objection_probe_seeks_the_email_history_index():
    """Per guest order, one seek on `customer_email_history_key`: never a scan (or, on
    PostgreSQL, a hash) of every customer and their consent state on each feed page; and the
    page walks the orders by id (the window's upper bound must not make SQLite sort them)."""
    now = timezone.now()
    Customer.objects.bulk_create(
        Customer(id=i, name=f"C{i}", email=f"Person{i}@Example.com", registered_at=now, terms_accepted_at=now)
        for i in range(1, 3001)
    )
    record_emails([(i, f"Person{i}@Example.com") for i in range(1, 3001)])
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            customer_id=i, purpose=Purpose.THIRD_PARTY_SHARING, granted=bool(i % 3), at=now, source=Source.IMPORT
        )
        for i in range(1, 3001)
    )
    Order.objects.bulk_create(
        Order(
            id=i,
            customer_id=None if i % 2 else i,
            email=f"person{i}@example.com",
            email_key=email_key(f"person{i}@example.com"),
            placed_at=now,
            terms_accepted_at=now,
        )
        for i in range(1, 3001)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE shop_customer, shop_customeremail, shop_order, gdpr_consentrecord")
    plan = eligible_orders(now=now).order_by("pk").values("pk")[:100].explain()
    assert "customer_email_history_key" in plan
    assert "hashed" not in plan.lower()
    assert ("shop_order_pkey" if connection.vendor == "postgresql" else "sqlite_autoindex_shop_order_1") in plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan
