"""Reconciliation by state: what a feed hands out is held; the sweep takes back what the policy
no longer admits, whatever changed (a setting, time, a dropped deletion); the costs stay fixed."""

from __future__ import annotations

import datetime as dt
import io
import types
from unittest import mock

import orjson
import pytest
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clerk.delivery import deliver_pending
from clerk.models import ClerkDeletion, Reason, Status
from clerk.outbox import queue_deletions
from feeds import encoding, pagination, stream
from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr import holdings
from gdpr.models import ClerkHolding, SweepMark
from gdpr.sweep import sweep
from tests.clerk.worker import run_worker_once
from tests.factories import (
    CategoryFactory,
    ConsentRecordFactory,
    CustomerFactory,
    OrderFactory,
    PageFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db


def hand_out(*names, now=None):
    for name in names or ("customers", "orders"):
        b"".join(feed_chunks(name, params=FeedParams(), now=now))


def held(object_type):
    return holdings.held_ids(object_type=object_type, after=None, size=10**9)


def queued(object_type, reason=Reason.LEFT_FEED):
    return sorted(
        ClerkDeletion.objects.filter(object_type=object_type, reason=reason).values_list("object_id", flat=True)
    )


@pytest.fixture
def by_contract_and_by_consent():
    """One customer (and order) by contract only, one by explicit consent."""
    contract = CustomerFactory()
    consent = CustomerFactory()
    ConsentRecordFactory(customer=consent)
    orders = OrderFactory(customer=contract), OrderFactory(customer=consent)
    hand_out()
    return types.SimpleNamespace(contract=contract, consent=consent, orders=orders)


def test_serving_holds_every_customer_and_order_handed_out(feed_client, by_contract_and_by_consent):
    data = by_contract_and_by_consent
    assert held("customers") == sorted([data.contract.pk, data.consent.pk])
    assert held("orders") == sorted(o.pk for o in data.orders)


def test_the_single_feed_and_paged_walks_hold_too(feed_client):
    customers = CustomerFactory.create_batch(3)
    page = orjson.loads(b"".join(feed_client.get("/feed/customers.json?limit=2&offset=2").streaming_content))
    assert held("customers") == sorted(obj["id"] for obj in page) != []
    b"".join(feed_client.get("/feed/all.json").streaming_content)
    assert held("customers") == sorted(c.pk for c in customers)


def test_a_purpose_change_queues_the_deletion_of_what_it_takes_out(settings, by_contract_and_by_consent):
    data = by_contract_and_by_consent
    settings.CLERK_DATA_PURPOSE = "marketing"  # the contract is no ground for marketing
    report = sweep()
    assert queued("customers") == [data.contract.pk]
    assert queued("orders") == [data.orders[0].pk]
    assert (report.customers, report.orders, report.held) == (1, 1, 4)
    assert held("customers") == [data.consent.pk]  # queued: no longer held
    mark = SweepMark.objects.get()
    assert (mark.purpose, mark.recent_days) == ("marketing", 730)


def test_a_shorter_window_queues_the_deletion_of_what_it_takes_out(settings):
    now = timezone.now()
    old = CustomerFactory(registered_at=now - dt.timedelta(days=400))
    new = CustomerFactory(registered_at=now - dt.timedelta(days=100))
    old_order = OrderFactory(customer=new, placed_at=now - dt.timedelta(days=400))
    hand_out()
    settings.GDPR_RECENT_DAYS = 365
    sweep()
    assert queued("customers") == [old.pk]
    assert queued("orders") == [old_order.pk]
    assert new.pk in held("customers")


def test_time_passing_queues_once_never_twice():
    now = timezone.now()
    ageing = CustomerFactory(registered_at=now - dt.timedelta(days=729))
    hand_out(now=now)
    assert sweep(now=now).customers == 0
    assert sweep(now=now + dt.timedelta(days=2)).customers == 1
    assert sweep(now=now + dt.timedelta(days=3)).customers == 0
    assert queued("customers") == [ageing.pk]


def test_served_deleted_served_again_is_deleted_again(settings, fake_clerk, by_contract_and_by_consent):
    contract = by_contract_and_by_consent.contract
    settings.CLERK_DATA_PURPOSE = "marketing"
    sweep()
    deliver_pending()
    assert contract.pk not in held("customers")
    settings.CLERK_DATA_PURPOSE = "personalisation"  # back in the feed, and served again
    hand_out("customers")
    assert contract.pk in held("customers")
    settings.CLERK_DATA_PURPOSE = "marketing"
    sweep()
    assert ClerkDeletion.objects.filter(object_type="customers", object_id=contract.pk).count() == 2


def test_a_superseded_customer_leaving_by_a_setting_is_queued_again(settings, fake_clerk):
    """Withdrawn (queued), back before delivery (the worker drops the deletion): Clerk kept the
    customer, so a later purpose change must still take it back."""
    customer = CustomerFactory()
    hand_out("customers")
    queue_deletions(object_type="customers", ids=[customer.pk], reason=Reason.WITHDRAWAL)
    deliver_pending()  # still eligible: dropped as superseded, never sent
    assert ClerkDeletion.objects.get().status == Status.SUPERSEDED and held("customers") == []

    settings.CLERK_DATA_PURPOSE = "marketing"
    report = sweep()
    assert report.customers == 1 and queued("customers") == [customer.pk]
    assert sweep().customers == 0  # the latest deletion is pending now: not held again


def test_queueing_any_deletion_leaves_the_holdings_in_its_transaction(by_contract_and_by_consent):
    data = by_contract_and_by_consent
    data.orders[0].delete()  # shop deletions (`gdpr.receivers`)
    data.contract.delete()
    assert held("customers") == [data.consent.pk]
    assert held("orders") == [data.orders[1].pk]


def test_a_page_that_fails_to_record_serves_nothing(feed_client, monkeypatch):
    CustomerFactory.create_batch(3)
    monkeypatch.setattr(stream, "record_handed_out", mock.Mock(side_effect=DatabaseError("read-only")))
    feed_client.raise_request_exception = False
    response = feed_client.get("/feed/customers.json")
    assert response.status_code == 500
    assert b"Customer" not in response.content


def test_a_later_batch_that_fails_to_record_poisons_the_body(feed_client, monkeypatch):
    CustomerFactory.create_batch(7)
    monkeypatch.setattr(pagination, "BATCH_SIZE", 5)
    monkeypatch.setattr(encoding, "CHUNK_SIZE", 1)
    real = holdings.record_handed_out
    calls = []

    def second_fails(**kwargs):
        calls.append(kwargs["ids"])
        if len(calls) == 2:
            raise DatabaseError("read-only")
        real(**kwargs)

    monkeypatch.setattr(stream, "record_handed_out", second_fails)
    body = bytearray()
    with pytest.raises(DatabaseError):
        for chunk in feed_client.get("/feed/customers.json").streaming_content:
            body += chunk
    assert body.count(b'"id":') == 5  # the first batch only: the second was never shaped
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bytes(body))


def test_catalogue_feeds_record_nothing(feed_client, monkeypatch):
    ProductFactory(categories=[CategoryFactory()])
    PageFactory()
    recorder = mock.Mock()
    monkeypatch.setattr(stream, "record_handed_out", recorder)
    hand_out("products", "categories", "pages")
    recorder.assert_not_called()
    assert ClerkHolding.objects.count() == 0


def test_a_personal_page_costs_one_more_query_per_batch(monkeypatch):
    OrderFactory.create_batch(12)
    monkeypatch.setattr(pagination, "BATCH_SIZE", 5)

    def count(name):
        with CaptureQueriesContext(connection) as queries:
            b"".join(feed_chunks(name, params=FeedParams(limit=1000)))
        return len(queries)

    for name in ("customers", "orders"):
        count(name)  # the first page to serve the rows lists them (`feeds.listing`)
    recorded = {name: count(name) for name in ("customers", "orders")}
    with mock.patch.object(stream, "record_handed_out"):
        bare = {name: count(name) for name in ("customers", "orders")}
    # 12 rows in batches of 5: three batches, one INSERT each, whatever the batch's size.
    assert {name: recorded[name] - bare[name] for name in recorded} == {"customers": 3, "orders": 3}
    assert recorded == {"customers": bare["customers"] + 3, "orders": bare["orders"] + 3}
    assert bare == {"customers": BARE_PAGE_QUERIES["customers"], "orders": BARE_PAGE_QUERIES["orders"]}


# A page of 12 rows in batches of 5, without the recording: its bounds in the listing, one keyset
# read per batch, and for orders one read of their lines per batch.
BARE_PAGE_QUERIES = {"customers": 4, "orders": 7}


def test_the_sweep_walks_the_holdings_in_batches_at_a_fixed_cost(settings):
    customers = CustomerFactory.create_batch(7)
    hand_out("customers")
    settings.CLERK_DATA_PURPOSE = "marketing"
    with CaptureQueriesContext(connection) as queries:
        report = sweep(batch_size=3)
    assert report.customers == 7 and queued("customers") == sorted(c.pk for c in customers)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == SWEEP_QUERIES, statements


# Savepoints aside (the test runs in a transaction): the superseded deletions 1; per batch of
# held customers: read the held ids, the admitted ones, lock the pending deletions, insert the
# new ones, unhold (clear the bits, drop the emptied blocks) = 6, three batches; per type an
# empty read ends the walk 2; the mark 2.
SWEEP_QUERIES = 1 + 3 * 6 + 2 + 2


def test_bad_inputs_are_refused(settings):
    with pytest.raises(ValueError, match="not 'products'"):
        holdings.record_handed_out(object_type="products", ids=[1])
    with pytest.raises(ValueError, match="batch_size"):
        sweep(batch_size=0)
    settings.CLERK_DATA_PURPOSE = "newsletter"
    with pytest.raises(ValueError, match="Unknown CLERK_DATA_PURPOSE"):
        sweep()
    assert not SweepMark.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_holds_every_customer_and_order():
    """0004 seeds a row per customer and order; 0005 turns them into blocks, losing none."""
    executor = MigrationExecutor(connection)
    executor.migrate([("gdpr", "0003_consent_ledger_append_only_trigger")])
    customers = CustomerFactory.create_batch(3)
    orders = [OrderFactory(customer=customers[0]) for _ in range(2)]
    # Ids across blocks, and bit 63 (the sign bit of a block's mask).
    customers += [CustomerFactory(pk=pk) for pk in (63, 64, 127, 64 * 1000 + 5)]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert held("customers") == sorted(c.pk for c in customers)
    assert held("orders") == sorted(o.pk for o in orders)


def test_blocks_keep_every_bit_through_record_and_forget():
    ids = [1, 62, 63, 64, 127, 128, 10_000, 10_047]
    holdings.record_handed_out(object_type="orders", ids=ids)
    holdings.record_handed_out(object_type="orders", ids=ids[:3])  # already held: unchanged
    assert held("orders") == ids
    assert ClerkHolding.objects.count() == 4  # blocks 0, 1, 2 and 156
    holdings.forget_held(object_type="orders", ids=[63, 128, 10_000, 10_047, 99])
    assert held("orders") == [1, 62, 64, 127]
    assert ClerkHolding.objects.count() == 2  # emptied blocks are dropped
    assert holdings.held_ids(object_type="orders", after=62, size=2) == [64, 127]
    assert holdings.held_ids(object_type="orders", after=1, size=1) == [62]
    assert holdings.is_held(object_type="orders", object_id=127)
    assert not holdings.is_held(object_type="orders", object_id=63)
    assert held("customers") == []


def test_the_worker_sweeps_at_start(settings, fake_clerk):
    customer = CustomerFactory()
    hand_out("customers")
    settings.CLERK_DATA_PURPOSE = "marketing"
    run_worker_once(stdout=io.StringIO())
    # Swept before the first delivery pass, which sent the deletion.
    assert ClerkDeletion.objects.get(object_id=customer.pk).status == Status.DELIVERED
    assert SweepMark.objects.get().purpose == "marketing"
