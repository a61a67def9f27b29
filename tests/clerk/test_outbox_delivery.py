"""Delivering the outbox to the fake Clerk on loopback: ok, retries, kills, batches, refusals."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from clerk import delivery
from clerk.delivery import LEASE, MAX_REFUSALS, claim_batch, deliver_pending
from clerk.models import ClerkDeletion, DeliveryAttempt, Outcome, Reason, Status
from clerk.outbox import latest_deletion_time, queue_deletions, queue_forget
from tests.clerk.worker import run_worker_once
from tests.factories import ConsentRecordFactory, CustomerFactory

pytestmark = pytest.mark.django_db


class Clock:
    """A worker's clock the test moves by hand; it starts just after the rows are queued."""

    def __init__(self):
        self.now = timezone.now() + dt.timedelta(seconds=1)

    def __call__(self):
        return self.now

    def advance(self, delta):
        self.now += delta


@pytest.fixture
def clock():
    return Clock()


def sent_ids(fake_clerk, path="/customers"):
    return [json.loads(c.query[path.strip("/")][0]) for c in fake_clerk.calls(path, "DELETE")]


def statuses():
    return dict(ClerkDeletion.objects.values_list("object_id", "status"))


def test_success_delivers_and_marks_delivered(fake_clerk, clock):
    queue_deletions(object_type="customers", ids=[3, 1, 2], reason=Reason.WITHDRAWAL)
    report = deliver_pending(clock=clock)
    assert (report.calls, report.delivered) == (1, 3)
    [call] = fake_clerk.calls("/customers", "DELETE")
    assert json.loads(call.query["customers"][0]) == [1, 2, 3]
    assert call.query["key"] == ["test-public-key"] and call.query["private_key"] == ["test-private-key"]
    assert set(statuses().values()) == {Status.DELIVERED}
    # The attempt keeps Clerk's HTTP status, success included (the admin shows it).
    assert set(DeliveryAttempt.objects.values_list("outcome", "http_status")) == {(Outcome.OK, 200)}
    # Nothing left: a second run sends nothing.
    assert deliver_pending(clock=clock).calls == 0


def test_5xx_then_success_retries_after_backoff(fake_clerk, clock):
    fake_clerk.behave("/orders", "error500", "ok")
    queue_deletions(object_type="orders", ids=[7], reason=Reason.WITHDRAWAL)
    report = deliver_pending(clock=clock)
    assert (report.calls, report.retrying, report.delivered) == (1, 1, 0)
    row = ClerkDeletion.objects.get()
    assert row.status == Status.PENDING and row.attempts == 1 and "HTTP 500" in row.last_error
    assert row.next_attempt_at > clock.now
    # Not due yet: nothing is sent before the backoff ends.
    assert deliver_pending(clock=clock).calls == 0
    clock.advance(delivery.backoff(1) + dt.timedelta(seconds=1))
    assert deliver_pending(clock=clock).delivered == 1
    row.refresh_from_db()
    assert row.status == Status.DELIVERED and row.attempts == 2
    outcomes = list(row.deliveries.order_by("started_at").values_list("outcome", "http_status"))
    assert outcomes == [(Outcome.UNREACHABLE, 500), (Outcome.OK, 200)]
    assert len(fake_clerk.calls("/orders", "DELETE")) == 2


def test_clerk_down_keeps_rows_pending_with_growing_backoff(fake_clerk, clock):
    fake_clerk.behave("/customers", "error500", "status:503", "status:429")
    queue_deletions(object_type="customers", ids=[1], reason=Reason.WITHDRAWAL)
    waits = []
    for _ in range(3):
        deliver_pending(clock=clock)
        row = ClerkDeletion.objects.get()
        waits.append(row.next_attempt_at - clock.now)
        clock.advance(waits[-1])
    assert waits[0] < waits[1] < waits[2]
    assert row.status == Status.PENDING  # never given up on while Clerk is unreachable
    assert deliver_pending(clock=clock).delivered == 1


@pytest.mark.parametrize("outcome", ["malformed", "truncated", "empty", "not-object", "no-status"])
def test_an_unusable_reply_is_retried_and_never_counts_as_a_refusal(fake_clerk, clock, outcome):
    fake_clerk.behave("/orders", *[outcome] * (MAX_REFUSALS + 2))
    queue_deletions(object_type="orders", ids=[4, 5], reason=Reason.WITHDRAWAL)
    for _ in range(MAX_REFUSALS + 2):
        report = deliver_pending(clock=clock)
        assert (report.calls, report.retrying, report.failed) == (1, 2, 0)
        clock.advance(delivery.BACKOFF_CAP)
    assert set(ClerkDeletion.objects.values_list("status", "refusals")) == {(Status.PENDING, 0)}
    assert "not a JSON object with a status" in ClerkDeletion.objects.first().last_error
    assert set(DeliveryAttempt.objects.values_list("outcome", flat=True)) == {Outcome.UNREACHABLE}
    assert deliver_pending(clock=clock).delivered == 2


def test_clerk_down_for_several_passes_loses_nothing(fake_clerk, clock):
    """Down in every way for three passes (5xx, 429, a proxy's page, replies that are not
    Clerk's answer), then back: every row is delivered exactly once, none refused or failed."""
    down = ["error500", "malformed", "html:502", "status:429", "no-status", "status:503"]
    fake_clerk.behave("/customers", *(down * 2)[:9])  # 3 batches a pass
    fake_clerk.behave("/orders", *down[:3])
    fake_clerk.behave("/privacy/forget", *down[3:])
    queue_deletions(object_type="customers", ids=range(1, 251), reason=Reason.AGED_OUT)
    queue_deletions(object_type="orders", ids=range(1, 31), reason=Reason.WITHDRAWAL)
    queue_forget(reason=Reason.ERASURE, email="gone@example.com")
    for _ in range(3):
        report = deliver_pending(clock=clock)
        assert (report.calls, report.delivered, report.retrying, report.failed) == (5, 0, 281, 0)
        clock.advance(max(ClerkDeletion.objects.values_list("next_attempt_at", flat=True)) - clock.now)
    assert deliver_pending(clock=clock).delivered == 281
    assert set(ClerkDeletion.objects.values_list("status", "refusals")) == {(Status.DELIVERED, 0)}
    assert sorted(i for b in sent_ids(fake_clerk) for i in b) == sorted([*range(1, 251)] * 4)
    assert DeliveryAttempt.objects.filter(outcome=Outcome.OK).count() == 281
    assert not DeliveryAttempt.objects.filter(outcome=Outcome.REFUSED).exists()
    assert deliver_pending(clock=clock).calls == 0


def test_kill_between_send_and_acknowledgement_resends_next_run(fake_clerk, clock):
    queue_deletions(object_type="customers", ids=[1, 2], reason=Reason.WITHDRAWAL)
    with mock.patch.object(delivery, "acknowledge", side_effect=KeyboardInterrupt("killed")):
        with pytest.raises(KeyboardInterrupt):
            deliver_pending(clock=clock)
    assert sent_ids(fake_clerk) == [[1, 2]]  # Clerk got it...
    assert set(statuses().values()) == {Status.PENDING}  # ...but we never heard: not lost
    assert set(DeliveryAttempt.objects.values_list("outcome", flat=True)) == {Outcome.IN_FLIGHT}
    # Another worker does not steal the leased rows while the lease runs...
    assert deliver_pending(clock=clock).calls == 0
    # ...and sends them again once it has expired: a duplicate, which is harmless.
    clock.advance(LEASE + dt.timedelta(seconds=1))
    assert deliver_pending(clock=clock).delivered == 2
    assert sent_ids(fake_clerk) == [[1, 2], [1, 2]]
    assert set(statuses().values()) == {Status.DELIVERED}


def test_batches_hold_at_most_100_ids_per_call(fake_clerk, clock):
    queue_deletions(object_type="orders", ids=range(1, 251), reason=Reason.AGED_OUT)
    queue_deletions(object_type="products", ids=range(1, 121), reason=Reason.DELETED)
    report = deliver_pending(clock=clock)
    assert report.delivered == 370
    order_batches = sent_ids(fake_clerk, "/orders")
    product_batches = sent_ids(fake_clerk, "/products")
    assert [len(b) for b in order_batches] == [100, 100, 50]
    assert [len(b) for b in product_batches] == [100, 20]
    assert sorted(i for b in order_batches for i in b) == list(range(1, 251))


def test_refusals_are_capped_then_the_row_fails_and_can_be_retried(fake_clerk, clock):
    fake_clerk.behave("/pages", *["status:403"] * MAX_REFUSALS)
    queue_deletions(object_type="pages", ids=[5], reason=Reason.DELETED)
    for _ in range(MAX_REFUSALS):
        deliver_pending(clock=clock)
        clock.advance(dt.timedelta(days=1))
    row = ClerkDeletion.objects.get()
    assert row.status == Status.FAILED and row.refusals == MAX_REFUSALS
    assert row.deliveries.filter(outcome=Outcome.REFUSED).count() == MAX_REFUSALS
    assert deliver_pending(clock=clock).calls == 0
    ClerkDeletion.objects.filter(pk=row.pk).update(status=Status.PENDING, refusals=0, next_attempt_at=clock.now)
    assert deliver_pending(clock=clock).delivered == 1


def test_forget_sends_the_email_once_then_forgets_it_locally(fake_clerk, clock):
    queue_forget(reason=Reason.ERASURE, email="mario@example.com")
    queue_forget(reason=Reason.ERASURE, customer_id=12)
    assert deliver_pending(clock=clock).delivered == 2
    bodies = [c.body for c in fake_clerk.calls("/privacy/forget", "POST")]
    assert {"email": "mario@example.com"}.items() <= bodies[0].items()
    assert {"customer": 12}.items() <= bodies[1].items()
    assert list(ClerkDeletion.objects.values_list("email", flat=True)) == ["", ""]


def test_deletion_of_a_customer_back_in_the_feed_is_superseded(fake_clerk, clock):
    c = CustomerFactory()
    ConsentRecordFactory(customer=c, granted=True)  # re-granted after a withdrawal was queued
    queue_deletions(object_type="customers", ids=[c.pk, 999], reason=Reason.WITHDRAWAL)
    report = deliver_pending(clock=clock)
    assert (report.superseded, report.delivered) == (1, 1)
    assert sent_ids(fake_clerk) == [[999]]
    assert statuses() == {c.pk: Status.SUPERSEDED, 999: Status.DELIVERED}


def test_two_workers_claim_disjoint_rows(clock):
    queue_deletions(object_type="customers", ids=range(1, 151), reason=Reason.AGED_OUT)
    first = claim_batch(now=clock.now)
    second = claim_batch(now=clock.now)
    assert len(first.rows) == 100 and len(second.rows) == 50
    assert not set(first.ids) & set(second.ids)
    assert claim_batch(now=clock.now) is None


def test_clerk_sync_one_shot_prints_a_summary(fake_clerk, capsys):
    queue_deletions(object_type="categories", ids=[4], reason=Reason.DELETED)
    call_command("clerk_sync")
    assert "1 delivered" in capsys.readouterr().out
    assert len(fake_clerk.calls("/categories", "DELETE")) == 1


def test_clerk_sync_refuses_to_run_without_keys(settings):
    settings.CLERK_PRIVATE_KEY = ""
    with pytest.raises(CommandError, match="CLERK_PRIVATE_KEY"):
        call_command("clerk_sync")


def test_clerk_sync_loop_delivers_and_stops_on_signal(fake_clerk, capsys):
    queue_deletions(object_type="customers", ids=[1], reason=Reason.WITHDRAWAL)
    run_worker_once()
    out = capsys.readouterr().out
    assert "1 delivered" in out and "reconciled" in out and "stopped" in out
    assert ClerkDeletion.objects.get().status == Status.DELIVERED


def test_latest_deletion_time_is_the_newest_queued_row():
    assert latest_deletion_time() is None
    queue_deletions(object_type="products", ids=[1], reason=Reason.DELETED)
    first = latest_deletion_time()
    queue_deletions(object_type="products", ids=[2], reason=Reason.DELETED)
    assert latest_deletion_time() >= first


@pytest.mark.django_db(transaction=True)
def test_a_worker_skips_rows_another_worker_holds_locked(clock):
    """PostgreSQL: rows locked by a claim in progress are skipped, not waited for nor re-sent.
    SQLite has no row locks (it serialises writers): there the claim takes no lock at all."""
    import threading

    from django.db import connection, connections, transaction

    queue_deletions(object_type="customers", ids=range(1, 151), reason=Reason.AGED_OUT)
    due = ClerkDeletion.objects.filter(status=Status.PENDING).order_by("id")
    if connection.vendor != "postgresql":
        assert "FOR UPDATE" not in str(delivery._locked(due).query)
        return
    held, release, seen = threading.Event(), threading.Event(), []

    def other_worker():
        try:
            with transaction.atomic():
                seen.extend(r.object_id for r in delivery._locked(due)[:100])
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        claim = claim_batch(now=clock.now)  # would block without SKIP LOCKED
        assert sorted(claim.ids) == list(range(101, 151))
        assert not set(claim.ids) & set(seen)
    finally:
        release.set()
        thread.join()


@pytest.mark.django_db(transaction=True)
def test_a_pending_row_relied_on_by_a_delete_in_progress_is_not_superseded(clock):
    """A product re-created, then deleted again while its first deletion is still pending: the
    second delete relies on the pending row. A worker claiming at that moment must not mark the
    row superseded (it would still see the product): the row is locked until the delete
    commits, the claim skips it, and the next claim sends it. On SQLite writers are serialised,
    so the interleaving cannot happen and no lock is taken."""
    import threading

    from django.db import connection, connections, transaction

    from shop.models import Product
    from tests.factories import ProductFactory

    product = ProductFactory(id=7)
    product.delete()
    ProductFactory(id=7)  # back in the shop, its first deletion still pending
    assert ClerkDeletion.objects.filter(object_id=7, status=Status.PENDING).count() == 1
    if connection.vendor != "postgresql":
        queue_deletions(object_type="products", ids=[7], reason=Reason.DELETED)
        assert ClerkDeletion.objects.filter(object_id=7, status=Status.PENDING).count() == 1
        return
    held, release = threading.Event(), threading.Event()

    def deleting_transaction():
        try:
            with transaction.atomic():
                Product.objects.get(pk=7).delete()  # queues (relies on) the pending row
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=deleting_transaction)
    thread.start()
    try:
        assert held.wait(10)
        assert claim_batch(now=clock.now) is None  # the only due row is locked: skipped
    finally:
        release.set()
        thread.join()
    claim = claim_batch(now=clock.now)
    assert claim is not None and claim.ids == [7] and claim.superseded == 0


# --- a batch Clerk refuses for one id ----------------------------------------------------------
def test_a_batch_refused_for_one_id_delivers_every_other_id(fake_clerk, clock):
    fake_clerk.state.refuse_ids = {37}
    queue_deletions(object_type="orders", ids=range(1, 101), reason=Reason.AGED_OUT)
    report = deliver_pending(clock=clock)
    calls = sent_ids(fake_clerk, "/orders")
    # Halves until 37 stands alone: one call per part, log2(100) levels at most.
    assert len(calls) == report.calls <= 2 * 7 + 1
    assert [len(c) for c in calls if 37 in c] == [100, 50, 25, 12, 6, 3, 2, 1]
    assert (report.delivered, report.retrying, report.failed) == (99, 1, 0)
    rows = {r.object_id: r for r in ClerkDeletion.objects.all()}
    assert {i for i, r in rows.items() if r.status == Status.DELIVERED} == set(range(1, 101)) - {37}
    assert (rows[37].status, rows[37].refusals) == (Status.PENDING, 1)
    assert "Object 37 is invalid" in rows[37].last_error
    assert {r.refusals for i, r in rows.items() if i != 37} == {0}
    # Every call is logged: one attempt per id it named, each finished.
    assert DeliveryAttempt.objects.count() == sum(len(c) for c in calls)
    assert not DeliveryAttempt.objects.filter(outcome=Outcome.IN_FLIGHT).exists()
    assert DeliveryAttempt.objects.filter(outcome=Outcome.OK).count() == 99
    assert rows[37].deliveries.filter(outcome=Outcome.REFUSED).count() == 8


def test_only_the_lone_refused_id_fails_after_the_cap(fake_clerk, clock):
    fake_clerk.state.refuse_ids = {5}
    queue_deletions(object_type="customers", ids=range(1, 9), reason=Reason.WITHDRAWAL)
    for _ in range(MAX_REFUSALS):
        deliver_pending(clock=clock)
        clock.advance(delivery.BACKOFF_CAP)
    assert statuses() == {**{i: Status.DELIVERED for i in range(1, 9)}, 5: Status.FAILED}
    failed = ClerkDeletion.objects.get(object_id=5)
    assert failed.refusals == MAX_REFUSALS and "Object 5 is invalid" in failed.last_error
    # The others were delivered in the first pass, once; later passes sent 5 alone.
    assert DeliveryAttempt.objects.filter(outcome=Outcome.OK).count() == 7
    assert sent_ids(fake_clerk)[-(MAX_REFUSALS - 1) :] == [[5]] * (MAX_REFUSALS - 1)
    assert deliver_pending(clock=clock).calls == 0


def test_every_refused_id_of_a_batch_is_isolated(fake_clerk, clock):
    fake_clerk.state.refuse_ids = {3, 4, 90}
    queue_deletions(object_type="products", ids=range(1, 101), reason=Reason.DELETED)
    report = deliver_pending(clock=clock)
    assert (report.delivered, report.retrying) == (97, 3)
    pending = ClerkDeletion.objects.filter(status=Status.PENDING)
    assert set(pending.values_list("object_id", "refusals")) == {(3, 1), (4, 1), (90, 1)}


def test_a_refusal_of_our_credentials_is_not_split(fake_clerk, clock):
    """401/403: Clerk refuses the keys, not an id; splitting would only multiply the refusals."""
    fake_clerk.behave("/customers", "status:403")
    queue_deletions(object_type="customers", ids=[1, 2, 3], reason=Reason.WITHDRAWAL)
    report = deliver_pending(clock=clock)
    assert (report.calls, report.retrying) == (1, 3)
    assert set(ClerkDeletion.objects.values_list("status", "refusals")) == {(Status.PENDING, 1)}


def test_clerk_down_in_the_middle_of_a_split_counts_no_refusal(fake_clerk, clock):
    fake_clerk.state.refuse_ids = {6}
    fake_clerk.behave("/customers", "refuse-id:6", "error500")  # then Clerk goes down
    queue_deletions(object_type="customers", ids=range(1, 9), reason=Reason.WITHDRAWAL)
    report = deliver_pending(clock=clock)
    # [1..8] refused, [1..4] unreachable: [5..8], not sent yet, waits with it.
    assert sent_ids(fake_clerk) == [list(range(1, 9)), [1, 2, 3, 4]]
    assert (report.calls, report.delivered, report.retrying) == (2, 0, 8)
    waiting = ClerkDeletion.objects.filter(status=Status.PENDING)
    assert set(waiting.values_list("refusals", flat=True)) == {0} and waiting.count() == 8
    assert all(r.next_attempt_at > clock.now for r in waiting)
    assert not DeliveryAttempt.objects.filter(outcome=Outcome.IN_FLIGHT).exists()
    clock.advance(delivery.BACKOFF_CAP)
    assert deliver_pending(clock=clock).delivered == 7
    assert ClerkDeletion.objects.get(status=Status.PENDING).object_id == 6


def test_a_split_renews_the_lease_before_each_call(fake_clerk, clock):
    """A long split must not let another worker claim rows still being worked on."""
    fake_clerk.state.refuse_ids = {16}  # the last part sent: no row is due again meanwhile
    queue_deletions(object_type="customers", ids=range(1, 17), reason=Reason.WITHDRAWAL)
    real_send = delivery._send
    stolen = []

    def slow_send(client, part):
        clock.advance(LEASE * 0.6)
        stolen.append(claim_batch(now=clock.now))  # another worker, at this moment
        real_send(client, part)

    with mock.patch.object(delivery, "_send", slow_send):
        deliver_pending(clock=clock)
    assert len(stolen) == 9 and stolen == [None] * 9
    assert ClerkDeletion.objects.filter(status=Status.DELIVERED).count() == 15


def test_a_worker_killed_in_the_middle_of_a_split_loses_nothing(fake_clerk, clock):
    fake_clerk.state.refuse_ids = {6}
    queue_deletions(object_type="customers", ids=range(1, 9), reason=Reason.WITHDRAWAL)
    with mock.patch.object(delivery, "acknowledge", side_effect=KeyboardInterrupt("killed")):
        with pytest.raises(KeyboardInterrupt):
            deliver_pending(clock=clock)
    # [1..8] was refused, [1..4] sent and accepted, then the worker died before recording it.
    assert sent_ids(fake_clerk) == [list(range(1, 9)), [1, 2, 3, 4]]
    assert set(statuses().values()) == {Status.PENDING}
    assert deliver_pending(clock=clock).calls == 0  # leased: nobody else sends them meanwhile
    clock.advance(LEASE + dt.timedelta(seconds=1))
    report = deliver_pending(clock=clock)
    assert (report.delivered, report.retrying) == (7, 1)
    assert statuses() == {**{i: Status.DELIVERED for i in range(1, 9)}, 6: Status.PENDING}
    assert ClerkDeletion.objects.get(object_id=6).refusals == 1
