"""The proof of reconciliation: whatever happens, Clerk's copy stays within what the policy admits.

A mirror of Clerk is built only from what Clerk really received: the objects of importer walks
over /feed/customers.json and /feed/orders.json (limit/offset until `[]`), and the calls the
fake Clerk got (`POST /customers|/orders`: pushes, with `CLERK_PUSH=all`; `DELETE
/customers|/orders`; `POST /privacy/forget`, which removes the person and anonymises their
orders). Random sequences of imports, email changes, consent grants and
withdrawals, erasures, settings changes and clock moves run, each followed by a sweep and a
delivery pass; then the mirror's customers and non-anonymised orders must be admitted by the
policy now. Runs on SQLite and PostgreSQL alike (as the whole suite does).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from clerk.delivery import deliver_pending
from feeds.pagination import forget_unsaved_cursors
from gdpr.erasure import NothingToErase, erase_person
from gdpr.importing import LedgerForImport
from gdpr.ledger import record_consent
from gdpr.models import Purpose, Source
from gdpr.policy import eligible_customers, eligible_orders
from gdpr.sweep import sweep
from shop.importing import import_objects
from shop.models import Customer
from tests.conftest import TEST_TOKEN, HTTPSClient

START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a fixed moment: any hour of the real day
CUSTOMERS = [1, 2, 3]
ORDERS = [1, 2, 3, 4, 5]
EMAILS = ["ada@example.com", "bo@example.com", "cy@example.com"]
DAYS_AGO = [0, 100, 400, 800]
PAGE = 2  # objects per page of the importer's walk: several pages from little data

step_st = st.one_of(
    st.tuples(
        st.just("customer"),
        st.sampled_from(CUSTOMERS),
        st.sampled_from(EMAILS),
        st.sampled_from(DAYS_AGO),
        st.booleans(),
    ),
    st.tuples(
        st.just("order"),
        st.sampled_from(ORDERS),
        st.sampled_from([None, *CUSTOMERS]),
        st.sampled_from(EMAILS),
        st.sampled_from(DAYS_AGO),
        st.booleans(),
    ),
    st.tuples(
        st.just("consent"),
        st.sampled_from(CUSTOMERS),
        st.sampled_from([Purpose.THIRD_PARTY_SHARING, Purpose.MARKETING]),
        st.booleans(),
    ),
    # Withdrawn and granted again before the next delivery: the worker drops the deletion.
    st.tuples(st.just("flip"), st.sampled_from(CUSTOMERS)),
    st.tuples(st.just("erase"), st.sampled_from(CUSTOMERS)),
    st.tuples(st.just("erase_email"), st.sampled_from(EMAILS)),
    st.tuples(st.just("purpose"), st.sampled_from(["personalisation", "marketing"])),
    st.tuples(st.just("days"), st.sampled_from([30, 365, 730])),
    st.tuples(st.just("clock"), st.sampled_from([1, 40, 200, 400])),
    st.tuples(st.just("walk")),
)


customer_st = st.tuples(st.sampled_from(EMAILS), st.sampled_from(DAYS_AGO), st.booleans())
order_st = st.tuples(
    st.sampled_from([None, *CUSTOMERS]), st.sampled_from(EMAILS), st.sampled_from(DAYS_AGO), st.booleans()
)
# What the shop holds before the steps: every customer, some orders; imported, then walked.
world_st = st.tuples(
    st.lists(customer_st, min_size=len(CUSTOMERS), max_size=len(CUSTOMERS)),
    st.lists(order_st, min_size=len(ORDERS), max_size=len(ORDERS)),
)


class Mirror:
    """Clerk's copy, as far as Clerk's inputs tell."""

    def __init__(self) -> None:
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}  # with "anonymised": True once forgotten
        self.seen_calls = 0

    def import_walk(self, client: HTTPSClient) -> None:
        for feed, store in (("customers", self.customers), ("orders", self.orders)):
            offset = 0
            while True:
                response = client.get(f"/feed/{feed}.json?limit={PAGE}&offset={offset}")
                assert response.status_code == 200, response
                objects = orjson.loads(b"".join(response.streaming_content))
                if not objects:
                    break
                for obj in objects:
                    store[obj["id"]] = obj
                offset += PAGE

    def receive(self, calls: list) -> None:
        for call in calls[self.seen_calls :]:
            if call.method == "POST" and call.path in ("/customers", "/orders"):
                store = self.customers if call.path == "/customers" else self.orders
                for obj in call.body[call.path.strip("/")]:
                    store[obj["id"]] = obj
            elif call.method == "DELETE" and call.path in ("/customers", "/orders"):
                store = self.customers if call.path == "/customers" else self.orders
                for object_id in json.loads(call.query[call.path.strip("/")][0]):
                    store.pop(object_id, None)
            elif call.method == "POST" and call.path == "/privacy/forget":
                self.forget(email=call.body.get("email"), customer=call.body.get("customer"))
        self.seen_calls = len(calls)

    def forget(self, *, email: str | None, customer: int | None) -> None:
        gone = (
            {customer}
            if customer is not None
            else {pk for pk, obj in self.customers.items() if obj.get("email", "").casefold() == email.casefold()}
        )
        for pk in gone:
            self.customers.pop(pk, None)
        for order in self.orders.values():
            by_email = email is not None and order.get("email", "").casefold() == email.casefold()
            if order.get("customer") in gone or by_email:
                order["anonymised"] = True

    def held_personal(self) -> tuple[set[int], set[int]]:
        orders = {pk for pk, obj in self.orders.items() if not obj.get("anonymised")}
        return set(self.customers), orders


class Reporter:
    def rejected(self, *args: Any) -> None:
        note(f"import rejected: {args[:2]}")

    def warning(self, message: str) -> None:
        note(f"import warning: {message}")


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


class TestMirrorOfClerk(TestCase):
    @pytest.fixture(autouse=True)
    def _clerk(self, fake_clerk):
        self.fake_clerk = fake_clerk

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=world_st, steps=st.lists(step_st, min_size=1, max_size=10))
    def test_clerks_copy_stays_within_the_policy(self, world, steps):
        for cache in caches.all():
            cache.clear()  # cursors of an earlier example's walks
        forget_unsaved_cursors()
        self.fake_clerk.reset()
        mirror = Mirror()
        client = HTTPSClient(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})
        with (
            override_settings(CLERK_DATA_PURPOSE="personalisation", GDPR_RECENT_DAYS=730, CLERK_PUSH="all"),
            time_machine.travel(START, tick=True) as traveller,
        ):
            customers, orders = world
            initial = [("customer", pk, *spec) for pk, spec in zip(CUSTOMERS, customers, strict=True)]
            initial += [("order", pk, *spec) for pk, spec in zip(ORDERS, orders, strict=True)]
            for step in [*initial, ("walk",), *steps]:
                note(f"step {step}")
                self.run_step(step, traveller=traveller, mirror=mirror, client=client)
                sweep()
                deliver_pending()
                mirror.receive(self.fake_clerk.state.calls)
                customers, orders = mirror.held_personal()
                now = timezone.now()
                admitted_customers = set(eligible_customers(now=now).values_list("pk", flat=True))
                admitted_orders = set(eligible_orders(now=now).values_list("pk", flat=True))
                assert customers <= admitted_customers, f"Clerk holds customers {customers - admitted_customers}"
                assert orders <= admitted_orders, f"Clerk holds orders {orders - admitted_orders}"

    def run_step(self, step: tuple, *, traveller, mirror: Mirror, client: HTTPSClient) -> None:
        kind, *args = step
        now = timezone.now()
        if kind == "customer":
            pk, email, days_ago, terms = args
            registered = unix(now - dt.timedelta(days=days_ago))
            obj = {"id": pk, "name": f"Person {pk}", "email": email, "registered_at": registered}
            if terms:
                obj["terms_accepted_at"] = registered
            import_objects({"customers": [obj]}, reporter=Reporter(), ledger=LedgerForImport())
        elif kind == "order":
            pk, customer, email, days_ago, terms = args
            placed = unix(now - dt.timedelta(days=days_ago))
            obj = {"id": pk, "time": placed, "email": email, "products": [{"id": 1, "quantity": 1, "price": 10}]}
            if customer is not None:
                obj["customer"] = customer
            if terms:
                obj["terms_accepted_at"] = placed
            import_objects({"orders": [obj]}, reporter=Reporter(), ledger=LedgerForImport())
        elif kind in ("consent", "flip"):
            customer = Customer.objects.filter(pk=args[0]).first()
            if customer is None:
                return
            changes = (
                [(args[1], args[2])]
                if kind == "consent"
                else [(Purpose.THIRD_PARTY_SHARING, False), (Purpose.THIRD_PARTY_SHARING, True)]
            )
            for purpose, granted in changes:
                try:
                    record_consent(
                        customer=customer,
                        purpose=purpose,
                        granted=granted,
                        at=timezone.now(),
                        source=Source.ADMIN,
                        evidence="property",
                    )
                except ValidationError as exc:  # e.g. an erased customer
                    note(f"consent refused: {exc.messages}")
        elif kind in ("erase", "erase_email"):
            try:
                if kind == "erase":
                    erase_person(customer_id=args[0])
                else:
                    erase_person(email=args[0])
            except NothingToErase:
                pass
        elif kind == "purpose":
            django_settings.CLERK_DATA_PURPOSE = args[0]
        elif kind == "days":
            django_settings.GDPR_RECENT_DAYS = args[0]
        elif kind == "clock":
            traveller.shift(dt.timedelta(days=args[0]))
        elif kind == "walk":
            mirror.import_walk(client)


@pytest.mark.django_db
def test_the_mirror_receives_pushes(fake_clerk, settings):
    """The property above sees pushes: an imported customer reaches Clerk without any walk."""
    settings.CLERK_PUSH = "all"
    registered = unix(timezone.now() - dt.timedelta(days=3))
    obj = {"id": 1, "name": "Ada", "email": EMAILS[0], "registered_at": registered, "terms_accepted_at": registered}
    import_objects({"customers": [obj]}, reporter=Reporter(), ledger=LedgerForImport())
    deliver_pending()
    mirror = Mirror()
    mirror.receive(fake_clerk.state.calls)
    assert set(mirror.customers) == {1}
