"""An import that brings customers or orders into the feeds moves their `updated_at`, so Clerk's
incremental imports (`modified_after`) see them; one that takes them out queues their deletion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clerk.models import ClerkDeletion
from gdpr.ledger import record_consent
from gdpr.models import Purpose, Source
from shop.models import Customer, Order
from tests.shop.helpers import import_cleanly, page

pytestmark = pytest.mark.django_db

_import = import_cleanly
LINE = [{"id": 1, "quantity": 1, "price": 5}]


def queued(object_type: str) -> list[int]:
    return sorted(ClerkDeletion.objects.filter(object_type=object_type).values_list("object_id", flat=True))


def test_customer_accepting_terms_makes_orders_eligible_without_moving_their_updated_at():
    """Order eligibility follows the customer's contract (registered + terms), but an import that
    sets `terms_accepted_at` moves only the customer's `updated_at`: an incremental
    (`modified_after`) orders feed never shows the orders that just entered the feed."""
    now = timezone.now()
    long_ago = int((now - dt.timedelta(days=30)).timestamp())
    registered = int((now - dt.timedelta(days=60)).timestamp())
    customer = {"id": 7, "name": "Ada", "email": "ada@example.com", "registered_at": registered}
    order = {
        "id": 70,
        "customer": 7,
        "time": long_ago,
        "updated_at": long_ago,
        "products": [{"id": 1, "quantity": 1, "price": 5}],
    }
    _import({"customers": [dict(customer, updated_at=long_ago)], "orders": [order]})
    assert page("orders", limit=10, offset=0) == []  # no contract yet: not in the feed
    _import({"customers": [dict(customer, terms_accepted_at=int(now.timestamp()) - 5)]})
    assert page("orders", limit=10, offset=0) == [70]  # now in the full feed
    # ...but an incremental import of the last day never learns it.
    assert page("orders", limit=10, offset=0, modified_after=1) == [70]


def test_new_order_makes_a_stale_contract_customer_eligible_without_moving_their_updated_at():
    """A contract customer whose data is stale is out; a new order makes them recent (eligible),
    but only the order's `updated_at` moves: the incremental customers feed never shows them."""
    now = timezone.now()
    old = int((now - dt.timedelta(days=1000)).timestamp())
    _import(
        {
            "customers": [
                {
                    "id": 8,
                    "name": "Bob",
                    "email": "bob@example.com",
                    "registered_at": old,
                    "terms_accepted_at": old,
                    "updated_at": old,
                }
            ]
        }
    )
    assert page("customers", limit=10, offset=0) == []
    _import(
        {
            "orders": [
                {
                    "id": 80,
                    "customer": 8,
                    "time": int(now.timestamp()) - 60,
                    "products": [{"id": 1, "quantity": 1, "price": 5}],
                }
            ]
        }
    )
    assert page("customers", limit=10, offset=0) == [8]
    assert page("customers", limit=10, offset=0, modified_after=1) == [8]


def test_an_object_the_file_changed_keeps_the_files_time_when_it_enters():
    """The shop's own `updated_at` of an object it changed is stored as given (DESIGN.md), even
    when that change brings the object into the feeds; only objects brought in by *another*
    object's change get the import time."""
    now = timezone.now()
    month_ago = int((now - dt.timedelta(days=30)).timestamp())
    shop_time = int((now - dt.timedelta(hours=3)).timestamp())
    customer = {"id": 7, "name": "Ada", "email": "ada@example.com", "registered_at": month_ago}
    order = {"id": 70, "customer": 7, "time": month_ago, "updated_at": month_ago, "products": LINE}
    _import({"customers": [dict(customer, updated_at=month_ago)], "orders": [order]})
    start = timezone.now()
    _import({"customers": [dict(customer, terms_accepted_at=shop_time, updated_at=shop_time)]})
    assert Customer.objects.get(pk=7).updated_at == dt.datetime.fromtimestamp(shop_time, tz=dt.UTC)
    assert Order.objects.get(pk=70).updated_at >= start  # entered through its customer


def test_an_order_batch_that_brings_nobody_in_moves_no_other_object():
    month_ago = timezone.now() - dt.timedelta(days=30)
    _import(
        {
            "customers": [
                {
                    "id": 7,
                    "name": "Ada",
                    "email": "ada@example.com",
                    "registered_at": int(month_ago.timestamp()),
                    "terms_accepted_at": int(month_ago.timestamp()),
                    "updated_at": int(month_ago.timestamp()),
                }
            ],
            "orders": [
                {
                    "id": 70,
                    "customer": 7,
                    "time": int(month_ago.timestamp()),
                    "updated_at": int(month_ago.timestamp()),
                    "products": LINE,
                }
            ],
        }
    )
    times = dict(Order.objects.values_list("pk", "updated_at")), Customer.objects.get(pk=7).updated_at
    _import({"orders": [{"id": 71, "customer": 7, "time": int(timezone.now().timestamp()) - 60, "products": LINE}]})
    assert (
        dict(Order.objects.filter(pk=70).values_list("pk", "updated_at")),
        Customer.objects.get(pk=7).updated_at,
    ) == times


def test_an_objection_follows_the_customer_to_a_new_email_and_keeps_the_old_one():
    """An objector's guest orders (same email, any case) are out; when the objector's email
    changes, the guest orders of the new address leave too (queued for deletion at Clerk), and
    those of the old one stay out: the objection covers every email the person has had."""
    now = timezone.now()
    month_ago = int((now - dt.timedelta(days=30)).timestamp())
    objector = {"id": 9, "name": "Cy", "email": "cy@example.com", "updated_at": month_ago}
    guest = {"time": month_ago, "updated_at": month_ago, "terms_accepted_at": month_ago, "products": LINE}
    _import(
        {
            "customers": [objector],
            "orders": [dict(guest, id=90, email="CY@example.com"), dict(guest, id=91, email="cy.new@example.com")],
        }
    )
    record_consent(
        customer=9,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=False,
        at=now,
        source=Source.ACCOUNT,
        evidence="objected",
    )
    assert page("orders", limit=10, offset=0) == [91]
    assert queued("orders") == [90]
    _import({"customers": [dict(objector, email="Cy.New@example.com")]})
    assert page("orders", limit=10, offset=0) == []
    assert queued("orders") == [90, 91]
    # The next import (the same file again, or another email still) changes nothing of that.
    _import({"customers": [dict(objector, email="Cy.Newer@example.com")]})
    assert page("orders", limit=10, offset=0) == []
    assert queued("orders") == [90, 91]


def test_a_guest_order_whose_terms_the_file_removes_is_queued_for_deletion():
    month_ago = int((timezone.now() - dt.timedelta(days=30)).timestamp())
    guest = {"id": 60, "time": month_ago, "email": "guest@example.com", "products": LINE}
    _import({"orders": [dict(guest, terms_accepted_at=month_ago)]})
    assert page("orders", limit=10, offset=0) == [60]
    _import({"orders": [guest]})
    assert page("orders", limit=10, offset=0) == []
    assert queued("orders") == [60]


def _customers_accepting_terms(n: int) -> int:
    """Queries of importing terms for `n` customers with two orders each, all of whom enter the
    feeds; not counting the upsert itself (SQLite splits it by its bound-parameter limit, and on
    PostgreSQL it bypasses Django's query log)."""
    month_ago = int((timezone.now() - dt.timedelta(days=30)).timestamp())
    base = 1000 * n
    customers = [
        {
            "id": base + i,
            "name": f"C{i}",
            "email": f"c{base + i}@example.com",
            "registered_at": month_ago,
            "updated_at": month_ago,
        }
        for i in range(n)
    ]
    orders = [
        {"id": base * 10 + k, "customer": base + k // 2, "time": month_ago, "updated_at": month_ago, "products": LINE}
        for k in range(2 * n)
    ]
    _import({"customers": customers, "orders": orders})
    with CaptureQueriesContext(connection) as queries:
        _import({"customers": [dict(c, terms_accepted_at=month_ago) for c in customers]})
    moved = Order.objects.filter(
        customer_id__gte=base, customer_id__lt=base + n, updated_at__gt=dt.datetime.fromtimestamp(month_ago, tz=dt.UTC)
    )
    assert moved.count() == 2 * n
    return sum(1 for q in queries if not q["sql"].startswith('INSERT INTO "shop_customer"'))


def test_feed_entries_cost_a_fixed_number_of_queries_per_batch():
    assert _customers_accepting_terms(10) == _customers_accepting_terms(120)
