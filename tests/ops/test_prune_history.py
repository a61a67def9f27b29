"""`manage.py prune_history`: old import runs and settled outbox rows go; proof and live work stay."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from clerk import retention as outbox_retention
from clerk.delivery import deliver_pending
from clerk.models import Action, ClerkDeletion, DeliveryAttempt, Outcome, Reason, Status
from clerk.outbox import deletion_queued_since, latest_deletion_time, queue_forget
from feeds import pagination, walks
from feeds import retention as run_retention
from feeds.models import ImportRun

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
EMAIL = "erased.person@example.com"


@pytest.fixture
def now():
    return timezone.now()


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_history", *args, stdout=out)
    return out.getvalue()


# --- builders ----------------------------------------------------------------------------------
def make_run(*, ended: dt.datetime, feed="products", outcome=ImportRun.Outcome.OK, started=None) -> ImportRun:
    """A run whose last page came at `ended` (and which ended then, unless it is running)."""
    started = started or ended - dt.timedelta(minutes=5)
    return ImportRun.objects.create(
        feed=feed,
        fmt="json",
        client="client-1",
        limit=100,
        params={},
        params_key="k",
        started_at=started,
        last_page_at=ended,
        finished_at=None if outcome == ImportRun.Outcome.RUNNING else ended,
        outcome=outcome,
        pages=3,
        object_count=250,
        next_offset=250,
    )


def make_deletion(
    *,
    at: dt.datetime,
    status=Status.DELIVERED,
    action=Action.DELETE,
    object_type="customers",
    object_id=7,
    email="",
    last_error="",
    attempts=1,
) -> ClerkDeletion:
    """An outbox row queued, tried and (if delivered) acknowledged at `at`, with its attempt log."""
    row = ClerkDeletion.objects.create(
        action=action,
        object_type="" if action == Action.FORGET else object_type,
        object_id=object_id,
        email=email,
        reason=Reason.ERASURE,
        status=status,
        created_at=at,
        next_attempt_at=at,
        attempts=attempts,
        delivered_at=at if status == Status.DELIVERED else None,
        last_error=last_error,
    )
    for _ in range(attempts):
        DeliveryAttempt.objects.create(
            deletion=row,
            batch=uuid.uuid4(),
            started_at=at,
            finished_at=at,
            outcome=Outcome.OK if status == Status.DELIVERED else Outcome.REFUSED,
            http_status=200,
        )
    return row


@contextlib.contextmanager
def rows_written():
    """(table, rows) of every UPDATE and DELETE run inside the block, in order."""
    written: list[tuple[str, int]] = []

    def record(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        match = re.match(r'(?:UPDATE|DELETE FROM) "(\w+)"', sql)
        if match:
            written.append((match.group(1), context["cursor"].rowcount))
        return result

    with connection.execute_wrapper(record):
        yield written


def snapshot() -> list:
    return [
        list(ImportRun.objects.order_by("pk").values()),
        list(ClerkDeletion.objects.order_by("pk").values()),
        list(DeliveryAttempt.objects.order_by("pk").values()),
    ]


# --- import runs -------------------------------------------------------------------------------
def test_finished_runs_older_than_the_limit_are_deleted_of_every_outcome(now):
    make_run(ended=now - DAY)  # the newest complete and finished walk: kept anyway
    old = [
        make_run(ended=now - 91 * DAY, outcome=outcome)
        for outcome in (ImportRun.Outcome.OK, ImportRun.Outcome.FAILED, ImportRun.Outcome.ABANDONED)
    ]
    recent = make_run(ended=now - 89 * DAY, outcome=ImportRun.Outcome.FAILED)

    assert run_retention.prune_import_runs(now=now, older_than=90 * DAY) == 3

    assert not ImportRun.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert ImportRun.objects.filter(pk=recent.pk).exists()


def test_a_run_exactly_n_days_old_is_kept_one_second_older_is_deleted(now):
    make_run(ended=now)
    exactly = make_run(ended=now - 90 * DAY)
    older = make_run(ended=now - 90 * DAY - SECOND)

    run_retention.prune_import_runs(now=now, older_than=90 * DAY)

    assert ImportRun.objects.filter(pk=exactly.pk).exists()
    assert not ImportRun.objects.filter(pk=older.pk).exists()


def test_newest_complete_walk_of_each_feed_stays_whatever_its_age(now):
    products = make_run(ended=now - 500 * DAY, feed="products")
    make_run(ended=now - 600 * DAY, feed="products")
    pages = make_run(ended=now - 300 * DAY, feed="pages")
    before = walks.latest_complete_walks()

    run_retention.prune_import_runs(now=now, older_than=90 * DAY)

    assert set(ImportRun.objects.values_list("pk", flat=True)) == {products.pk, pages.pk}
    assert walks.latest_complete_walks() == before


def test_newest_finished_walk_stays_so_clerk_check_still_sees_it_failed(now):
    complete = make_run(ended=now - 200 * DAY)
    failed = make_run(ended=now - 100 * DAY, outcome=ImportRun.Outcome.FAILED)
    make_run(ended=now - 150 * DAY, outcome=ImportRun.Outcome.FAILED)

    run_retention.prune_import_runs(now=now, older_than=90 * DAY)

    assert set(ImportRun.objects.values_list("pk", flat=True)) == {complete.pk, failed.pk}
    assert walks.feeds_whose_latest_walk_failed() == ["products"]


def test_a_running_walk_with_a_page_within_a_day_is_never_deleted(now):
    make_run(ended=now - 2 * DAY)
    live = make_run(ended=now - DAY + SECOND, started=now - 3 * DAY, outcome=ImportRun.Outcome.RUNNING)
    stale = make_run(ended=now - DAY - SECOND, outcome=ImportRun.Outcome.RUNNING)

    run_retention.prune_import_runs(now=now, older_than=DAY)

    assert ImportRun.objects.filter(pk=live.pk).exists()
    assert not ImportRun.objects.filter(pk=stale.pk).exists()


def test_import_runs_are_deleted_in_batches(now):
    make_run(ended=now)
    for _ in range(5):
        make_run(ended=now - 100 * DAY)

    with rows_written() as written:
        deleted = run_retention.prune_import_runs(now=now, older_than=90 * DAY, batch_size=2)

    assert deleted == 5 and ImportRun.objects.count() == 1
    assert written == [("feeds_importrun", 2), ("feeds_importrun", 2), ("feeds_importrun", 1)]


# --- the outbox --------------------------------------------------------------------------------
def test_settled_rows_are_redacted_and_lose_their_attempts_but_stay_as_proof(now):
    at = now - 31 * DAY
    forget = make_deletion(at=at, action=Action.FORGET, object_id=None, email=EMAIL, attempts=2)
    superseded = make_deletion(at=at, status=Status.SUPERSEDED, last_error="Clerk refused DELETE /customers")

    report = outbox_retention.prune_outbox(now=now)

    assert (report.redacted, report.attempts_deleted, report.rows_deleted) == (2, 3, 0)
    assert not DeliveryAttempt.objects.exists()
    forget.refresh_from_db()
    superseded.refresh_from_db()
    assert (forget.email, superseded.last_error) == ("", "")
    assert (forget.action, forget.reason, forget.status, forget.attempts) == (
        Action.FORGET,
        Reason.ERASURE,
        Status.DELIVERED,
        2,
    )
    assert (forget.created_at, forget.delivered_at) == (at, at)
    assert (superseded.object_type, superseded.object_id, superseded.status) == ("customers", 7, Status.SUPERSEDED)


def test_redaction_leaves_the_email_nowhere(now):
    make_deletion(at=now - 40 * DAY, action=Action.FORGET, object_id=None, email=EMAIL, last_error=f"echo {EMAIL}")

    prune()

    stored = repr(list(ClerkDeletion.objects.values())) + repr(list(DeliveryAttempt.objects.values()))
    assert EMAIL not in stored


@pytest.mark.parametrize("status", [Status.PENDING, Status.FAILED])
def test_pending_and_failed_rows_are_never_touched_however_old(now, status):
    # Settled rows on both sides, so that the waiting row lies inside the range the pass handles.
    make_deletion(at=now - 2000 * DAY, object_type="products")
    waiting = make_deletion(
        at=now - 1000 * DAY,
        status=status,
        action=Action.FORGET,
        object_id=None,
        email=EMAIL,
        last_error="Clerk refused POST /privacy/forget",
        attempts=3,
    )
    make_deletion(at=now - 900 * DAY, object_type="products")
    before = (
        ClerkDeletion.objects.filter(pk=waiting.pk).values().get(),
        list(waiting.deliveries.values()),
    )

    prune("--outbox-days", "1", "--outbox-delete-days", "1")

    assert ClerkDeletion.objects.count() == 2  # the older settled row went, the newest product stays
    after = (ClerkDeletion.objects.filter(pk=waiting.pk).values().get(), list(waiting.deliveries.values()))
    assert after == before


def test_an_outbox_row_exactly_n_days_old_is_kept_one_second_older_is_pruned(now):
    exactly = make_deletion(at=now - 30 * DAY, action=Action.FORGET, object_id=None, email=EMAIL)
    older = make_deletion(at=now - 30 * DAY - SECOND, action=Action.FORGET, object_id=None, email=EMAIL)

    outbox_retention.prune_outbox(now=now, redact_after=30 * DAY)

    exactly.refresh_from_db()
    older.refresh_from_db()
    assert (exactly.email, exactly.deliveries.count()) == (EMAIL, 1)
    assert (older.email, older.deliveries.count()) == ("", 0)


@pytest.mark.parametrize("field", ["created_at", "next_attempt_at", "delivered_at"])
def test_a_row_with_any_recent_time_is_not_settled(now, field):
    """E.g. queued long ago but delivered lately (it waited for Clerk): too recent to prune."""
    row = make_deletion(at=now - 60 * DAY, action=Action.FORGET, object_id=None, email=EMAIL)
    ClerkDeletion.objects.filter(pk=row.pk).update(**{field: now - 29 * DAY})

    outbox_retention.prune_outbox(now=now, redact_after=30 * DAY)

    row.refresh_from_db()
    assert row.email == EMAIL and row.deliveries.count() == 1


def test_a_row_really_delivered_by_the_worker_is_pruned_after_the_period(fake_clerk, now):
    """End to end: the times the worker writes (queued, lease, delivered) all count."""
    row = queue_forget(reason=Reason.ERASURE, customer_id=4711)
    deliver_pending()
    row.refresh_from_db()
    assert row.status == Status.DELIVERED and row.deliveries.count() == 1

    outbox_retention.prune_outbox(now=row.next_attempt_at + 30 * DAY)
    assert row.deliveries.count() == 1  # the lease's end is exactly 30 days back: kept

    outbox_retention.prune_outbox(now=row.next_attempt_at + 30 * DAY + SECOND)
    assert row.deliveries.count() == 0
    assert ClerkDeletion.objects.filter(pk=row.pk, object_id=4711, status=Status.DELIVERED).exists()


def test_rows_older_than_the_delete_period_go_except_the_newest_of_each_kind(now):
    ancient = now - 500 * DAY
    gone = [
        make_deletion(at=ancient - DAY, object_type="customers"),
        make_deletion(at=ancient - DAY, object_type="products", status=Status.SUPERSEDED),
        make_deletion(at=ancient - DAY, action=Action.FORGET, object_id=None),
    ]
    newest = [
        make_deletion(at=ancient, object_type="customers"),
        make_deletion(at=ancient, object_type="products"),
        make_deletion(at=ancient, action=Action.FORGET, object_id=None),
    ]
    latest = latest_deletion_time()

    report = outbox_retention.prune_outbox(now=now, delete_after=400 * DAY)

    assert report.rows_deleted == 3
    assert set(ClerkDeletion.objects.values_list("pk", flat=True)) == {r.pk for r in newest}
    assert not DeliveryAttempt.objects.filter(deletion_id__in=[r.pk for r in gone]).exists()
    assert latest_deletion_time() == latest


def test_delete_days_zero_keeps_the_proof_for_ever(now):
    make_deletion(at=now - 5000 * DAY)
    make_deletion(at=now - 4000 * DAY)

    prune("--outbox-delete-days", "0")

    assert ClerkDeletion.objects.count() == 2


def test_outbox_writes_go_in_batches(now):
    for _ in range(5):
        make_deletion(at=now - 40 * DAY, action=Action.FORGET, object_id=None, email=EMAIL)
    for age in range(5):
        make_deletion(at=now - 500 * DAY - age * SECOND, object_type="products")

    with rows_written() as written:
        report = outbox_retention.prune_outbox(now=now, batch_size=2)

    assert (report.redacted, report.attempts_deleted, report.rows_deleted) == (5, 10, 4)
    assert max(count for _, count in written) == 2
    assert sum(count for table, count in written if table == "gdpr_deliveryattempt") == 10
    assert sum(count for table, count in written if table == "gdpr_clerkdeletion") == 5 + 4
    assert not ClerkDeletion.objects.exclude(email="").exists()


def test_nothing_pruned_is_within_the_pagers_look_back():
    """The exact cold seek asks the outbox about the last `LONGEST_WALK`: never pruned."""
    assert outbox_retention.MIN_AGE >= pagination.LONGEST_WALK
    assert run_retention.MIN_AGE >= dt.timedelta(days=1)


def test_pruning_never_changes_what_the_pager_asks_the_outbox(now):
    """Rows pruned to the minimum age leave `deletion_queued_since` answering the same."""
    make_deletion(at=now - DAY - SECOND, object_type="products")
    since = now - pagination.LONGEST_WALK
    make_deletion(at=since + SECOND, object_type="pages")
    before = [deletion_queued_since(t, since) for t in ("products", "pages")]

    outbox_retention.prune_outbox(now=now, redact_after=DAY, delete_after=DAY)

    assert [deletion_queued_since(t, since) for t in ("products", "pages")] == before == [False, True]


# --- the command -------------------------------------------------------------------------------
def test_dry_run_changes_nothing_and_counts_what_the_real_run_does(now):
    make_run(ended=now)
    make_run(ended=now - 100 * DAY)
    make_deletion(at=now - 40 * DAY, action=Action.FORGET, object_id=None, email=EMAIL)
    make_deletion(at=now - 500 * DAY, object_type="products")
    doomed = make_deletion(at=now - 501 * DAY, object_type="products", attempts=2)
    # An attempt logged after its row settled (not old enough alone): it goes with its row.
    DeliveryAttempt.objects.filter(pk=doomed.deliveries.first().pk).update(started_at=now - DAY)
    before = snapshot()

    dry = prune("--dry-run")
    assert snapshot() == before
    real = prune()

    assert dry == (
        "prune_history --dry-run, nothing changed: 1 import run(s) to be deleted; outbox: 1 row(s) "
        "to be redacted, 4 delivery attempt(s) to be deleted, 1 row(s) to be deleted\n"
    )
    assert real == (
        "prune_history: 1 import run(s) deleted; outbox: 1 row(s) redacted, "
        "4 delivery attempt(s) deleted, 1 row(s) deleted\n"
    )
    assert snapshot() != before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--import-runs-days", "0"], "--import-runs-days must be at least 1 day"),
        (["--outbox-days", "0"], "--outbox-days must be at least 1 day"),
        (["--outbox-days", "-3"], "--outbox-days must be at least 1 day"),
        (
            ["--outbox-days", "60", "--outbox-delete-days", "59"],
            "--outbox-delete-days must be 0 (keep for ever) or at least --outbox-days (60)",
        ),
        (["--outbox-delete-days", "-1"], "--outbox-delete-days must be 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_values_that_would_break_the_rules_are_refused(now, args, message):
    make_run(ended=now - DAY - SECOND, outcome=ImportRun.Outcome.RUNNING)
    make_deletion(at=now - 2 * DAY, action=Action.FORGET, object_id=None, email=EMAIL)
    before = snapshot()

    with pytest.raises(CommandError, match=re.escape(message)):
        prune(*args)

    assert snapshot() == before


def test_the_smallest_accepted_values_run(now):
    out = prune("--import-runs-days", "1", "--outbox-days", "1", "--outbox-delete-days", "1", "--batch-size", "1")
    assert out.startswith("prune_history: 0 import run(s) deleted;")


@pytest.mark.parametrize("age", [dt.timedelta(hours=23), dt.timedelta(0)])
def test_the_services_refuse_ages_below_a_day(now, age):
    with pytest.raises(ValueError):
        run_retention.prune_import_runs(now=now, older_than=age)
    with pytest.raises(ValueError):
        outbox_retention.prune_outbox(now=now, redact_after=age)
