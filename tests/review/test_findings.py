"""Adversarial review findings: each test demonstrates one bug (it fails until the bug is fixed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from django.core.cache import cache
from django.utils import timezone

from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr.importing import LedgerForImport
from gdpr.ledger import record_consent
from gdpr.models import Purpose, Source
from shop.importing import import_objects
from shop.models import Customer, Order, Product
from tests.factories import CustomerFactory, OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db


def page(feed, *, limit, offset, client="importer", now=None, modified_after=None):
    params = FeedParams(limit=limit, offset=offset, modified_after=modified_after)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


# --- (A) feeds that silently omit objects -----------------------------------------------------


def test_concurrent_walks_of_one_client_overwrite_each_others_cursor_and_skip_a_row():
    """Two walks of the same importer (same token -> same client id) share cursor keys: walk B's
    page 0 overwrites the cursor walk A stored, and A's next page starts after B's key."""
    for pk in (10, 20, 30, 40, 50, 60):
        ProductFactory(id=pk)
    a0 = page("products", limit=2, offset=0)  # walk A: [10, 20], cursor@2 = 20
    Product.objects.filter(pk=10).delete()  # a row A already served goes away
    b0 = page("products", limit=2, offset=0)  # walk B: [20, 30], cursor@2 = 30 (overwrites A's)
    assert (a0, b0) == ([10, 20], [20, 30])
    rest_a = []
    offset = 2
    while ids := page("products", limit=2, offset=offset):
        rest_a += ids
        offset += 2
    # Product 30 existed for all of walk A, yet A never saw it: Clerk deletes it.
    assert 30 in a0 + rest_a


def test_failed_cursor_write_leaves_a_stale_cursor_of_an_earlier_walk_that_skips_rows(monkeypatch):
    """`Cursors.put` swallows a cache write failure, but the previous walk's entry (TTL 1 h) stays:
    the next page reads a cursor that belongs to another walk."""
    for pk in (10, 20, 30, 40, 50, 60):
        ProductFactory(id=pk)
    assert page("products", limit=2, offset=0) == [10, 20]  # walk 1: cursor@2 = 20
    ProductFactory(id=15)  # the shop imports a row with a lower id (ids are the shop's)

    class WritesFail:
        def get(self, *args, **kwargs):
            return cache.get(*args, **kwargs)

        def set(self, *args, **kwargs):
            raise ConnectionError("redis write timeout")

    with monkeypatch.context() as patched:
        patched.setattr("feeds.pagination.cache", WritesFail())
        assert page("products", limit=2, offset=0) == [10, 15]  # walk 2: its cursor is not written
    served = [10, 15]
    offset = 2
    while ids := page("products", limit=2, offset=offset):
        served += ids
        offset += 2
    assert served == [10, 15, 20, 30, 40, 50, 60]  # 20 is skipped: page 2 starts after walk 1's key


def test_cold_seek_skips_an_eligible_order_when_another_ages_out_of_the_window_between_pages():
    """With no cursor (evicted/flushed cache, another worker's local cache), the pager seeks by
    position in a set recomputed at a new `now`: an order that left the GDPR window between
    pages shifts positions and the next, still eligible, order is never served."""
    t0 = timezone.now()
    window = dt.timedelta(days=730)
    OrderFactory(id=1, placed_at=t0 - window + dt.timedelta(seconds=1))  # leaves the window at t0+1s
    OrderFactory(id=2)
    OrderFactory(id=3)
    assert page("orders", limit=1, offset=0, now=t0) == [1]
    cache.clear()  # the cursor is gone (eviction, restart, another process)
    later = t0 + dt.timedelta(seconds=2)
    served = [1]
    offset = 1
    while ids := page("orders", limit=1, offset=offset, now=later):
        served += ids
        offset += 1
    assert 2 in served  # order 2 is eligible throughout, but is skipped -> Clerk deletes it


def _import(sections):
    class Reporter:
        def __init__(self):
            self.problems = []

        def rejected(self, *args):
            self.problems.append(args)

        def warning(self, message):
            self.problems.append(message)

    reporter = Reporter()
    result = import_objects(sections, reporter=reporter, ledger=LedgerForImport())
    assert not reporter.problems, reporter.problems
    return result


def test_customer_accepting_terms_makes_orders_eligible_without_moving_their_updated_at():
    """Order eligibility follows the customer's contract (registered + terms), but an import that
    sets `terms_accepted_at` moves only the customer's `updated_at`: an incremental
    (`modified_after`) orders feed never shows the orders that just entered the feed."""
    now = timezone.now()
    long_ago = int((now - dt.timedelta(days=30)).timestamp())
    registered = int((now - dt.timedelta(days=60)).timestamp())
    customer = {"id": 7, "name": "Ada", "email": "ada@example.com", "registered_at": registered}
    order = {
        "id": 70, "customer": 7, "time": long_ago, "updated_at": long_ago,
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
    _import({"customers": [{
        "id": 8, "name": "Bob", "email": "bob@example.com", "registered_at": old,
        "terms_accepted_at": old, "updated_at": old,
    }]})
    assert page("customers", limit=10, offset=0) == []
    _import({"orders": [{
        "id": 80, "customer": 8, "time": int(now.timestamp()) - 60,
        "products": [{"id": 1, "quantity": 1, "price": 5}],
    }]})
    assert page("customers", limit=10, offset=0) == [8]
    assert page("customers", limit=10, offset=0, modified_after=1) == [8]


def test_reimporting_an_unchanged_customer_moves_updated_at_back_before_a_consent_change():
    """A consent recorded here moves the customer's `updated_at` to now. The next routine import
    of the same, unchanged, customer (the shop's own older `updated_at`) is not "unchanged": it
    writes the old time back, so the incremental customers feed loses the consent change."""
    now = timezone.now()
    old = int((now - dt.timedelta(days=30)).timestamp())
    row = {"id": 9, "name": "Cy", "email": "cy@example.com", "updated_at": old}  # no contract
    _import({"customers": [row]})
    record_consent(
        customer=9, purpose=Purpose.THIRD_PARTY_SHARING, granted=True, at=now - dt.timedelta(seconds=1),
        source=Source.ADMIN, evidence="signed form",
    )
    assert page("customers", limit=10, offset=0, modified_after=1) == [9]
    _import({"customers": [row]})  # the nightly import, nothing changed at the shop
    assert page("customers", limit=10, offset=0, modified_after=1) == [9]


# --- (B) personal data without a legal basis --------------------------------------------------


def test_guest_order_with_the_email_of_a_customer_who_objected_is_sent_with_that_email():
    """An objection "excludes the customer on every ground, the contract included", yet the same
    person's guest orders (placed with their email) go to Clerk, email and all, on the checkout
    terms: Clerk links them to the person by email."""
    customer = CustomerFactory(email="objector@example.com")
    record_consent(
        customer=customer, purpose=Purpose.THIRD_PARTY_SHARING, granted=False,
        at=timezone.now() - dt.timedelta(minutes=1), source=Source.ACCOUNT, evidence="objected",
    )
    OrderFactory(id=500, customer=None, email="objector@example.com", terms_accepted_at=timezone.now())
    assert page("customers", limit=10, offset=0) == []
    sent = orjson.loads(b"".join(feed_chunks("orders", params=FeedParams())))
    assert [o.get("email") for o in sent if o["id"] == 500] != ["objector@example.com"]


def test_grant_dated_within_the_clock_skew_outranks_a_later_real_withdrawal():
    """The ledger accepts records up to 5 minutes in the future, and the state is the latest by
    `at`: a grant dated now+4 min beats a withdrawal the customer makes a minute later (dated
    now), permanently. The objection is recorded, queues nothing, and the customer stays in."""
    customer = CustomerFactory(registered_at=None, terms_accepted_at=None)  # consent is the only ground
    now = timezone.now()
    record_consent(
        customer=customer, purpose=Purpose.THIRD_PARTY_SHARING, granted=True,
        at=now + dt.timedelta(minutes=4), source=Source.CHECKOUT, evidence="box ticked (shop clock ahead)",
    )
    record_consent(
        customer=customer, purpose=Purpose.THIRD_PARTY_SHARING, granted=False,
        at=timezone.now(), source=Source.ACCOUNT, evidence="withdrew on the account page",
    )
    later = now + dt.timedelta(hours=1)
    assert page("customers", limit=10, offset=0, now=later) == []
