"""Pushing changes to Clerk through the outbox: coalescing, order of operations, the policy at
delivery time, batches and refusals, a killed worker, the import's threshold and --no-push,
push and pull rendering the same bytes, the setting, the admin and clerk_check."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import orjson
import pytest
import time_machine
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clerk import delivery
from clerk.checks import check_push_setting
from clerk.client import get_client
from clerk.delivery import LEASE, claim_batch, deliver_pending
from clerk.health import Level, Options, check_push
from clerk.hooks import rendered
from clerk.models import Action, ClerkDeletion, Reason, Status
from clerk.outbox import queue_deletions, queue_pushes, retry_now
from gdpr.holdings import is_held
from gdpr.ledger import record_consent
from gdpr.models import Purpose, Source
from shop.models import Customer, Product
from tests.conftest import TEST_TOKEN, HTTPSClient
from tests.factories import CategoryFactory, CustomerFactory, OrderFactory, PageFactory, ProductFactory

pytestmark = pytest.mark.django_db


class Clock:
    """A worker's clock the test moves by hand: always a second past the real time (so every row
    queued before a call is due, however slow the machine), plus what the test advanced it by."""

    def __init__(self):
        self.offset = dt.timedelta(seconds=1)

    def __call__(self):
        return timezone.now() + self.offset

    def advance(self, delta):
        self.offset += delta


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def push_catalogue(settings):
    settings.CLERK_PUSH = "catalogue"


@pytest.fixture
def push_all(settings):
    settings.CLERK_PUSH = "all"


def rows(**filters):
    return list(ClerkDeletion.objects.filter(**filters).order_by("id"))


def posted(fake_clerk, path="/products"):
    """Every object POSTed to `path`, in order, as dicts."""
    return [obj for call in fake_clerk.calls(path, "POST") for obj in call.body[path.strip("/")]]


def posted_ids(fake_clerk, path="/products"):
    return [obj["id"] for obj in posted(fake_clerk, path)]


def deleted_ids(fake_clerk, path):
    return [i for c in fake_clerk.calls(path, "DELETE") for i in json.loads(c.query[path.strip("/")][0])]


# --- queueing and coalescing ---------------------------------------------------------------------
def test_a_saved_product_queues_one_push_however_often_it_changes(push_catalogue):
    product = ProductFactory()
    for price in ("1.00", "2.00", "3.00"):
        product.price = Decimal(price)
        product.save()
    [row] = rows()
    assert (row.action, row.object_type, row.object_id, row.status) == ("push", "products", product.pk, "pending")
    assert row.version == 3  # created, then three saves folded into it


def test_nothing_is_queued_with_push_off_and_personal_types_only_with_all(settings):
    settings.CLERK_PUSH = "off"
    ProductFactory()
    assert rows() == []
    settings.CLERK_PUSH = "catalogue"
    CustomerFactory()
    PageFactory()
    CategoryFactory()
    assert {r.object_type for r in rows()} == {"pages", "categories"}
    settings.CLERK_PUSH = "all"
    CustomerFactory()
    assert {r.object_type for r in rows()} == {"pages", "categories", "customers"}


def test_the_latest_intent_wins_push_after_delete_and_delete_after_push(push_catalogue):
    queue_pushes(object_type="products", ids=[1, 2])
    queue_deletions(object_type="products", ids=[1], reason=Reason.DELETED)
    queue_deletions(object_type="products", ids=[3], reason=Reason.DELETED)
    queue_pushes(object_type="products", ids=[3])
    got = {r.object_id: (r.action, r.reason) for r in rows()}
    assert got == {1: ("delete", "deleted"), 2: ("push", "changed"), 3: ("push", "changed")}
    assert ClerkDeletion.objects.count() == 3  # one row per object


def test_a_pending_erasure_is_never_replaced_by_a_push(push_all):
    queue_deletions(object_type="customers", ids=[5], reason=Reason.ERASURE)
    queue_pushes(object_type="customers", ids=[5])
    [row] = rows()
    assert (row.action, row.reason) == ("delete", "erasure")


def test_a_deletion_after_a_deletion_changes_nothing(push_catalogue):
    assert queue_deletions(object_type="products", ids=[1], reason=Reason.DELETED) == 1
    assert queue_deletions(object_type="products", ids=[1], reason=Reason.DELETED) == 0
    [row] = rows()
    assert row.version == 0


# --- delivery ----------------------------------------------------------------------------------
def test_a_push_is_posted_with_the_current_object_and_delivered(push_catalogue, fake_clerk, clock):
    product = ProductFactory(price=Decimal("10.00"))
    product.price = Decimal("12.50")
    product.save()
    report = deliver_pending(clock=clock)
    assert (report.calls, report.delivered) == (1, 1)
    [call] = fake_clerk.calls("/products", "POST")
    assert call.body["key"] == "test-public-key" and call.body["private_key"] == "test-private-key"
    [obj] = call.body["products"]
    assert obj["id"] == product.pk and obj["price"] == 12.5
    assert rows()[0].status == Status.DELIVERED
    assert deliver_pending(clock=clock).calls == 0


def test_order_of_operations_a_deletion_queued_while_a_push_is_in_flight(push_catalogue, fake_clerk, clock):
    product = ProductFactory()
    claim = claim_batch(now=clock())  # the push is rendered and in flight
    product.delete()  # the deletion is queued meanwhile: it folds into the same row
    delivery._send(get_client(), claim)
    delivery.acknowledge(claim, now=clock())
    [row] = rows()
    assert (row.action, row.status) == ("delete", "pending")  # the newer intent was not acknowledged
    deliver_pending(clock=clock)
    assert [(c.method, c.path) for c in fake_clerk.calls()] == [("POST", "/products"), ("DELETE", "/products")]
    assert rows()[0].status == Status.DELIVERED


def test_order_of_operations_a_push_queued_while_a_deletion_is_in_flight(push_catalogue, fake_clerk, clock):
    queue_deletions(object_type="products", ids=[7], reason=Reason.DELETED)
    claim = claim_batch(now=clock())
    ProductFactory(id=7)  # back in the shop: a push folds into the row in flight
    delivery._send(get_client(), claim)
    delivery.acknowledge(claim, now=clock())
    assert rows()[0].action == "push" and rows()[0].status == "pending"
    deliver_pending(clock=clock)
    assert [(c.method, c.path) for c in fake_clerk.calls()] == [("DELETE", "/products"), ("POST", "/products")]
    assert posted_ids(fake_clerk) == [7]


def test_a_change_during_a_push_in_flight_is_pushed_again(push_catalogue, fake_clerk, clock):
    product = ProductFactory(name="Old")
    claim = claim_batch(now=clock())
    product.name = "New"
    product.save()
    delivery._send(get_client(), claim)
    delivery.acknowledge(claim, now=clock())
    deliver_pending(clock=clock)
    assert [o["name"] for o in posted(fake_clerk)] == ["Old", "New"]
    assert rows()[0].status == Status.DELIVERED


def test_an_object_that_left_the_feeds_is_deleted_not_pushed(push_all, fake_clerk, clock, settings):
    customer = CustomerFactory()  # eligible by contract when queued
    settings.CLERK_DATA_PURPOSE = "marketing"  # no explicit consent: out of the feed at delivery
    report = deliver_pending(clock=clock)
    assert fake_clerk.calls("/customers", "POST") == []
    assert deleted_ids(fake_clerk, "/customers") == [customer.pk]
    assert report.deleted_instead == 1
    [row] = rows()
    assert (row.action, row.reason, row.status) == ("delete", "left_feed", "delivered")


def test_personal_data_is_pushed_only_while_the_policy_admits_it(push_all, fake_clerk, clock):
    ok = CustomerFactory()
    old = CustomerFactory()
    # The old one's data ages out of the window between queueing and delivery.
    Customer.objects.filter(pk=old.pk).update(
        registered_at=timezone.now() - dt.timedelta(days=2000),
        terms_accepted_at=timezone.now() - dt.timedelta(days=2000),
    )
    order = OrderFactory(customer=ok)
    deliver_pending(clock=clock)
    assert posted_ids(fake_clerk, "/customers") == [ok.pk]
    assert posted_ids(fake_clerk, "/orders") == [order.pk]
    assert deleted_ids(fake_clerk, "/customers") == [old.pk]
    # What was pushed is held by Clerk (the GDPR sweep can take it back); what was not, is not.
    assert is_held(object_type="customers", object_id=ok.pk)
    assert not is_held(object_type="customers", object_id=old.pk)


def test_a_consent_entry_queues_a_push_of_the_customer(push_all, settings):
    settings.CLERK_DATA_PURPOSE = "marketing"
    customer = CustomerFactory()
    ClerkDeletion.objects.all().delete()
    record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=True,
        at=timezone.now(),
        source=Source.ADMIN,
        evidence="test",
    )
    assert [(r.action, r.object_id, r.reason) for r in rows(object_type="customers")] == [
        ("push", customer.pk, "entered")
    ]


def test_a_setting_turned_down_drops_pending_personal_pushes_and_holds_what_clerk_may_have(
    push_all, fake_clerk, clock, settings
):
    customer = CustomerFactory()
    settings.CLERK_PUSH = "catalogue"
    report = deliver_pending(clock=clock)
    assert fake_clerk.calls() == []
    assert report.superseded == 1
    [row] = rows()
    assert row.status == Status.SUPERSEDED and "CLERK_PUSH=catalogue" in row.last_error
    assert is_held(object_type="customers", object_id=customer.pk)


def test_at_most_100_objects_per_call(push_catalogue, fake_clerk, clock):
    queue_pushes(object_type="products", ids=[p.pk for p in ProductFactory.create_batch(250)])
    report = deliver_pending(clock=clock)
    assert [len(c.body["products"]) for c in fake_clerk.calls("/products", "POST")] == [100, 100, 50]
    assert report.delivered == 250


def test_a_call_stays_within_the_size_bound(push_catalogue, fake_clerk, clock, monkeypatch):
    monkeypatch.setattr(delivery, "MAX_PUSH_BYTES", 2000)
    products = ProductFactory.create_batch(12, description="x" * 400)
    deliver_pending(clock=clock)
    calls = fake_clerk.calls("/products", "POST")
    assert len(calls) > 1
    assert all(len(orjson.dumps(c.body["products"])) <= 2000 for c in calls)
    assert sorted(posted_ids(fake_clerk)) == [p.pk for p in products]


@pytest.mark.parametrize("outcome", ["status:429", "error500", "status:503"])
def test_clerk_busy_or_down_backs_off_then_delivers(push_catalogue, fake_clerk, clock, outcome):
    product = ProductFactory()
    fake_clerk.behave("/products", outcome)
    report = deliver_pending(clock=clock)
    assert (report.calls, report.retrying, report.delivered) == (1, 1, 0)
    [row] = rows()
    assert row.status == "pending" and row.next_attempt_at > clock()
    assert deliver_pending(clock=clock).calls == 0  # waiting out its backoff
    clock.advance(dt.timedelta(minutes=1))
    assert deliver_pending(clock=clock).delivered == 1
    assert posted_ids(fake_clerk) == [product.pk, product.pk]


def test_a_refused_batch_is_split_until_the_refused_object_stands_alone(push_catalogue, fake_clerk, clock):
    products = ProductFactory.create_batch(8)
    bad = products[5].pk
    fake_clerk.state.refuse_ids = {bad}
    report = deliver_pending(clock=clock)
    assert (report.delivered, report.failed) == (7, 1)
    assert report.calls <= 2 * 8 - 1
    statuses = {r.object_id: r.status for r in rows()}
    assert statuses.pop(bad) == Status.FAILED
    assert set(statuses.values()) == {Status.DELIVERED}
    failed = rows(status=Status.FAILED)[0]
    assert f"Object {bad} is invalid." in failed.last_error  # Clerk's reason
    # clerk_check names it; the admin counts it.
    result = check_push(Options())
    assert result.level == Level.WARNING and "1 push(es) refused" in result.message
    assert any(f"products {bad}: " in d and "is invalid" in d for d in result.details)
    # A later change of the object pushes it again; once delivered, the failure is settled.
    fake_clerk.state.refuse_ids = set()
    products[5].save()
    deliver_pending(clock=clock)
    assert rows(status=Status.FAILED) == []
    assert check_push(Options()).level == Level.OK


class KilledAfterSending:
    """A client whose process dies after Clerk took call number `die_on` (before the acknowledgement)."""

    def __init__(self, die_on: int):
        self.real = get_client()
        self.die_on = die_on
        self.calls = 0

    @property
    def last_status(self):
        return self.real.last_status

    def upsert_encoded(self, object_type, objects):
        self.calls += 1
        reply = self.real.upsert_encoded(object_type, objects)
        if self.calls == self.die_on:
            raise KeyboardInterrupt("killed")
        return reply


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing_acknowledged(push_catalogue, fake_clerk, clock):
    ids = [p.pk for p in ProductFactory.create_batch(250)]
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(clock=clock, client=KilledAfterSending(die_on=2))
    first, second = (c.body["products"] for c in fake_clerk.calls("/products", "POST"))
    acknowledged = {o["id"] for o in first}
    assert {r.object_id for r in rows(status=Status.DELIVERED)} == acknowledged
    # The rows of the killed call stay leased: no other run takes them before the lease ends.
    assert deliver_pending(clock=clock).calls == 1  # the third batch only
    clock.advance(LEASE + dt.timedelta(seconds=1))
    deliver_pending(clock=clock)
    counts: dict[int, int] = {}
    for i in posted_ids(fake_clerk):
        counts[i] = counts.get(i, 0) + 1
    assert set(counts) == set(ids)  # nothing lost
    assert {i for i, n in counts.items() if n > 1} == {o["id"] for o in second}  # only the unacknowledged
    assert all(counts[i] == 1 for i in acknowledged)
    assert {r.status for r in rows()} == {Status.DELIVERED}


# --- push and pull render the same object ------------------------------------------------------
def feed_body(path: str) -> bytes:
    client = HTTPSClient(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})
    response = client.get(path)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("languages", [[], ["english", "italian"]])
def test_push_and_pull_render_the_same_bytes(push_all, fake_clerk, clock, settings, languages):
    settings.CLERK_LANGUAGES = languages
    shoes = CategoryFactory(name="Shoes", translations={"italian": {"name": "Scarpe"}})
    ProductFactory(
        categories=[shoes],
        price=Decimal("1234567890.123456789"),
        list_price=Decimal("20.00"),
        attributes={"colour": "red", "sizes": [40, 41], "bad name": 1},
        translations={"italian": {"name": "Prodotto"}},
    )
    ProductFactory(index=False, brand="Acme")
    PageFactory()
    customer = CustomerFactory(zip="1000", is_b2b=False)
    OrderFactory(customer=customer, lines=[(1, 2, Decimal("9.95"))])
    queue_pushes(object_type="products", ids=Product.objects.values_list("pk", flat=True))
    for feed in ("products", "categories", "pages", "customers", "orders"):
        ids = sorted(ClerkDeletion.objects.filter(object_type=feed).values_list("object_id", flat=True))
        pushed = rendered(feed, ids, now=clock())
        assert feed_body(f"/feed/{feed}.json") == b"[" + b",".join(pushed[i] for i in ids) + b"]", feed
    deliver_pending(clock=clock)
    for feed in ("products", "categories", "pages", "customers", "orders"):
        assert posted(fake_clerk, f"/{feed}") == orjson.loads(feed_body(f"/feed/{feed}.json")), feed


# --- the import: changed rows only, the threshold, --no-push -------------------------------------
def import_products(products, *args):
    out = io.StringIO()
    call_command(
        "import_shop", "-", "--type", "products", *args, stdin=io.BytesIO(json.dumps(products).encode()), stdout=out
    )
    return out.getvalue()


def catalogue(n, changed=()):
    return [
        {
            "id": i,
            "name": f"P{i}" + ("!" if i in changed else ""),
            "description": "",
            "price": 10,
            "image": f"https://s.example/{i}.jpg",
            "url": f"https://s.example/{i}",
            "created_at": 1700000000,
            "categories": [],
        }
        for i in range(1, n + 1)
    ]


def test_an_initial_import_queues_nothing_and_says_so(push_catalogue):
    out = import_products(catalogue(30))
    assert rows() == []
    assert "push: products: 30 of 30 changed, over 10%: no push queued" in out


def test_a_reimport_pushes_only_the_changed_rows(push_catalogue):
    import_products(catalogue(30))
    out = import_products(catalogue(31, changed={4, 9}))  # two changed, one new, 28 unchanged
    assert sorted(r.object_id for r in rows(action=Action.PUSH)) == [4, 9, 31]
    assert "push: products: 3 push(es) queued for Clerk" in out
    assert import_products(catalogue(31, changed={4, 9})).count("queued for Clerk") == 0  # nothing changed


def test_more_than_a_tenth_changed_queues_nothing(push_catalogue):
    import_products(catalogue(30))
    out = import_products(catalogue(30, changed={1, 2, 3, 4}))  # 4 of 30 > 10%
    assert rows() == []
    assert "4 of 30 changed, over 10%: no push queued" in out
    import_products(catalogue(30, changed={1, 2, 3, 4, 10, 11, 12}))  # 3 of 30: not over
    assert sorted(r.object_id for r in rows()) == [10, 11, 12]


def test_no_push_queues_nothing_and_says_so(push_catalogue):
    import_products(catalogue(30))
    out = import_products(catalogue(30, changed={5}), "--no-push")
    assert rows() == []
    assert "push: products: 1 changed, no push queued (--no-push)" in out


# --- the setting -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["sometimes", "", "ALL", None])
def test_a_bad_setting_is_a_clear_error(settings, value):
    settings.CLERK_PUSH = value
    [error] = check_push_setting()
    assert isinstance(error, Error) and error.id == "clerk.E001"
    assert f"CLERK_PUSH is {value!r}; it must be one of: off, catalogue, all" in error.msg
    with pytest.raises(ImproperlyConfigured, match="CLERK_PUSH"):
        queue_pushes(object_type="products", ids=[1])


@pytest.mark.parametrize("value", ["off", "catalogue", "all"])
def test_each_mode_passes_the_check(settings, value):
    settings.CLERK_PUSH = value
    assert check_push_setting() == []


# --- visible: admin and clerk_check --------------------------------------------------------------
def test_clerk_check_reports_the_oldest_pending_push_and_fails_past_an_hour(push_catalogue):
    ProductFactory()
    result = check_push(Options())
    assert result.level == Level.OK and result.message.startswith("1 push(es) waiting, the oldest for")
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=61), tick=False):
        result = check_push(Options())
    assert result.level == Level.FAILURE and "is the clerk_sync worker running" in result.message


def test_the_admin_shows_pushes_per_type(push_catalogue, fake_clerk, clock, django_user_model):
    products = ProductFactory.create_batch(3)
    fake_clerk.state.refuse_ids = {products[0].pk}
    deliver_pending(clock=clock)
    PageFactory()  # pending
    admin = HTTPSClient()
    admin.force_login(django_user_model.objects.create_superuser("boss", "boss@shop.example", "pw"))
    response = admin.get(reverse("admin:clerk_clerkpush_changelist"))
    assert response.status_code == 200
    summary = {row["type"]: row for row in response.context["push_summary"]}
    assert (summary["products"]["pending"], summary["products"]["delivered"], summary["products"]["failed"]) == (
        0,
        2,
        1,
    )
    assert summary["pages"]["pending"] == 1
    assert "Object" in response.content.decode() and "is invalid" in response.content.decode()
    assert len(response.context["cl"].result_list) == 4  # push rows only
    queue_deletions(object_type="categories", ids=[99], reason=Reason.DELETED)
    deletions = admin.get(reverse("admin:clerk_clerkdeletion_changelist"))
    assert [row.action for row in deletions.context["cl"].result_list] == [Action.DELETE]  # no pushes there


def test_retrying_a_failed_row_never_makes_two_pending_intents_of_one_object(push_catalogue):
    old_delete = ClerkDeletion.objects.create(
        action=Action.DELETE, object_type="products", object_id=1, reason=Reason.DELETED, status=Status.FAILED
    )
    queue_pushes(object_type="products", ids=[1])  # a newer intent of the same object is pending
    failed_a = ClerkDeletion.objects.create(
        action=Action.PUSH, object_type="products", object_id=2, reason=Reason.CHANGED, status=Status.FAILED
    )
    failed_b = ClerkDeletion.objects.create(
        action=Action.PUSH, object_type="products", object_id=2, reason=Reason.CHANGED, status=Status.FAILED
    )
    assert retry_now(ClerkDeletion.objects.all()) == 2  # the pending push again, and object 2's newest
    status = dict(ClerkDeletion.objects.values_list("pk", "status"))
    assert status[old_delete.pk] == Status.FAILED
    assert (status[failed_a.pk], status[failed_b.pk]) == (Status.FAILED, Status.PENDING)


def test_a_worker_stalled_past_its_lease_does_not_send_what_it_rendered(push_all, fake_clerk, clock):
    customer = CustomerFactory()
    claim = claim_batch(now=clock())  # rendered while eligible
    clock.advance(LEASE - dt.timedelta(seconds=10))  # the worker stalls (GC, SIGSTOP, a slow disk)
    report = delivery.DeliveryReport()
    delivery._deliver(get_client(), claim, clock=clock, report=report)
    assert fake_clerk.calls() == [] and report.retrying == 1
    [row] = rows()
    assert row.status == Status.PENDING and row.object_id == customer.pk


def test_seeding_a_demo_shop_is_a_first_import_and_pushes_nothing(push_catalogue):
    out = io.StringIO()
    call_command("seed_demo", "--products", "30", stdout=out)
    assert not ClerkDeletion.objects.filter(action=Action.PUSH).exists()
    assert "push: products: 30 of 30 changed, over 10%: no push queued" in out.getvalue()


def test_a_batch_costs_the_same_queries_whatever_its_size(push_catalogue, fake_clerk, clock):
    def queries_to_deliver(n: int) -> int:
        ProductFactory.create_batch(n)
        with CaptureQueriesContext(connection) as captured:
            report = deliver_pending(clock=clock)
        assert (report.calls, report.delivered) == (1, n)
        return len(captured)

    assert queries_to_deliver(3) == queries_to_deliver(100)


def test_moving_a_category_pushes_it_and_both_parents(push_catalogue):
    old, new = CategoryFactory(), CategoryFactory()
    child = CategoryFactory(parent=old)
    ClerkDeletion.objects.all().delete()
    child.parent = new
    child.save()
    assert sorted(r.object_id for r in rows(action=Action.PUSH)) == sorted([old.pk, new.pk, child.pk])
