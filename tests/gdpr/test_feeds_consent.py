"""Consent changes as Clerk's importer sees them through the real feed endpoints."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from clerk.models import ClerkDeletion, Status
from gdpr.ledger import record_consent
from gdpr.models import ConsentRecord, Purpose, Source
from shop.models import Customer, Order
from tests.conftest import TEST_TOKEN, HTTPSClient
from tests.factories import CustomerFactory, OrderFactory
from tests.gdpr import policy_oracle as oracle

pytestmark = pytest.mark.django_db


def feed(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return orjson.loads(b"".join(response.streaming_content) if response.streaming else response.content)


def page_ids(client, name, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return [obj["id"] for obj in feed(client, f"/feed/{name}.json?{qs}")]


def single_ids(client):
    body = feed(client, "/feed/all.json")
    return {o["id"] for o in body["customers"]}, {o["id"] for o in body["orders"]}


def set_sharing(customer, granted):
    return record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=granted,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="account page toggle",
    )


def test_withdrawal_removes_customer_and_orders_from_the_next_page_and_queues_deletion(feed_client):
    anna, bruno = CustomerFactory(), CustomerFactory()
    anna_orders = [OrderFactory(customer=anna), OrderFactory(customer=anna)]
    bruno_order = OrderFactory(customer=bruno)
    assert page_ids(feed_client, "customers", limit=100, offset=0) == [anna.pk, bruno.pk]
    assert page_ids(feed_client, "orders", limit=100, offset=0) == [o.pk for o in anna_orders] + [bruno_order.pk]

    set_sharing(anna, False)

    assert page_ids(feed_client, "customers", limit=100, offset=0) == [bruno.pk]
    assert page_ids(feed_client, "orders", limit=100, offset=0) == [bruno_order.pk]
    assert single_ids(feed_client) == ({bruno.pk}, {bruno_order.pk})
    queued = set(ClerkDeletion.objects.filter(status=Status.PENDING).values_list("object_type", "object_id"))
    assert queued == {("customers", anna.pk)} | {("orders", o.pk) for o in anna_orders}


def test_regrant_brings_them_back_also_in_incremental_imports(feed_client):
    long_ago = timezone.now() - dt.timedelta(days=30)
    anna = CustomerFactory(updated_at=long_ago)
    order = OrderFactory(customer=anna, updated_at=long_ago)
    set_sharing(anna, False)
    assert page_ids(feed_client, "customers") == [] and page_ids(feed_client, "orders") == []

    set_sharing(anna, True)

    assert page_ids(feed_client, "customers") == [anna.pk]
    assert page_ids(feed_client, "orders") == [order.pk]
    # An incremental import (changed in the last day) sees them come back.
    assert page_ids(feed_client, "customers", modified_after=1) == [anna.pk]
    assert page_ids(feed_client, "orders", modified_after=1) == [order.pk]
    assert single_ids(feed_client) == ({anna.pk}, {order.pk})


def test_subscribed_follows_the_latest_marketing_record(feed_client):
    anna = CustomerFactory()
    record_consent(
        customer=anna,
        purpose=Purpose.MARKETING,
        granted=True,
        at=timezone.now(),
        source=Source.CHECKOUT,
        evidence="newsletter box",
    )
    assert feed(feed_client, "/feed/customers.json")[0]["subscribed"] is True
    record_consent(
        customer=anna,
        purpose=Purpose.MARKETING,
        granted=False,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="unsubscribe link",
    )
    assert feed(feed_client, "/feed/customers.json")[0]["subscribed"] is False


# --- the feeds themselves against the independent rule -----------------------------------------
# Offsets stay clear of the window's exact edge: the feed reads the clock at request time.
OFFSETS = [0, 1, 29.5, 30.5, 400, 729.5, 730.5, 1500]

world_st = st.fixed_dictionaries(
    {
        "customers": st.lists(
            st.fixed_dictionaries(
                {
                    "registered": st.one_of(st.none(), st.sampled_from(OFFSETS)),
                    "terms": st.booleans(),
                    "erased": st.booleans(),
                    "email": st.sampled_from(["ada@example.com", "Ada@Example.com", "bo@example.com", ""]),
                    "consents": st.lists(
                        st.tuples(
                            st.sampled_from([oracle.SHARING, oracle.MARKETING]),
                            st.booleans(),
                            st.sampled_from([2, 5, 5, 900]),
                        ),
                        max_size=3,
                    ),
                }
            ),
            max_size=5,
        ),
        "orders": st.lists(
            st.fixed_dictionaries(
                {
                    "customer": st.one_of(st.none(), st.integers(0, 4)),
                    "placed": st.sampled_from(OFFSETS),
                    "terms": st.booleans(),
                    "erased": st.booleans(),
                    "email": st.sampled_from(["ADA@example.com", "bo@example.com", ""]),
                }
            ),
            max_size=6,
        ),
    }
)


class FeedsMatchTheIndependentRule(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=world_st, purpose=st.sampled_from(["personalisation", "marketing"]))
    def test_customers_and_orders_feeds_equal_the_rule(self, world, purpose):
        now = timezone.now()
        ago = lambda days: now - dt.timedelta(days=days)  # noqa: E731
        people, purchases, seq = [], [], 0
        for i, spec in enumerate(world["customers"], start=1):
            registered = ago(spec["registered"]) if spec["registered"] is not None else None
            terms = ago(1) if spec["terms"] else None
            email = "" if spec["erased"] else spec["email"]  # erasure blanks it and its history
            person = oracle.Person(i, registered, terms, spec["erased"], email)
            Customer.objects.create(
                id=i,
                name=f"C{i}",
                email=email,
                registered_at=registered,
                terms_accepted_at=terms,
                erased_at=now if spec["erased"] else None,
            )
            for purpose_name, granted, offset in spec["consents"]:
                seq += 1
                person.consents.append(oracle.Consent(purpose_name, granted, ago(offset), seq))
                ConsentRecord.objects.create(
                    customer_id=i, purpose=purpose_name, granted=granted, at=ago(offset), source=Source.IMPORT
                )
            people.append(person)
        for j, spec in enumerate(world["orders"], start=1):
            owner = (
                people[spec["customer"]] if spec["customer"] is not None and spec["customer"] < len(people) else None
            )
            terms = ago(spec["placed"]) if spec["terms"] else None
            purchases.append(oracle.Purchase(j, owner, ago(spec["placed"]), terms, spec["erased"], spec["email"]))
            order = Order.objects.create(
                id=j,
                customer_id=owner.id if owner else None,
                email=spec["email"],
                placed_at=ago(spec["placed"]),
                terms_accepted_at=terms,
                erased_at=now if spec["erased"] else None,
            )
            order.lines.create(product_id=1, quantity=1, unit_price=1)

        kw = {"now": now, "purpose": purpose, "days": 730}
        with override_settings(CLERK_DATA_PURPOSE=purpose, GDPR_RECENT_DAYS=730):
            client = HTTPSClient(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})
            customers = {o["id"] for o in feed(client, "/feed/customers.json")}
            orders = feed(client, "/feed/orders.json")
        assert customers == {p.id for p in people if oracle.customer_in_feed(p, purchases, **kw)}
        assert {o["id"] for o in orders} == {
            o.id for o in purchases if oracle.order_in_feed(o, purchases, people=people, **kw)
        }
        # No order names a customer the customers feed does not show (guests name none).
        assert {o["customer"] for o in orders if "customer" in o} <= customers
