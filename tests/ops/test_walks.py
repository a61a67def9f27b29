"""Import runs: served pages folded into importer walks, cheaply, and summarised for ops."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import orjson
import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clerk.health import format_age
from feeds import walks
from feeds.models import ImportRun
from feeds.signals import page_served

pytestmark = pytest.mark.django_db

IMPORTER = "client-3f2a"


def serve(
    *, offset, rows, limit=100, feed="products", fmt="json", outcome="ok", client=IMPORTER, params=None, size=None
):
    """Send `page_served` exactly as the feed views do, after the page's last byte."""
    page_served.send_robust(
        sender=None,
        feed=feed,
        fmt=fmt,
        offset=offset,
        limit=limit,
        rows=rows,
        bytes=size if size is not None else rows * 100 + 2,
        duration=0.25,
        outcome=outcome,
        client=client,
        params={"limit": limit, "offset": offset, **(params or {})},
    )


def test_walk_from_offset_zero_to_the_empty_page_is_one_complete_run():
    for offset in (0, 100, 200):
        serve(offset=offset, rows=100)
    serve(offset=300, rows=0)

    run = ImportRun.objects.get()
    assert run.outcome == ImportRun.Outcome.OK
    assert (run.pages, run.object_count, run.byte_count) == (4, 300, 3 * 10002 + 2)
    assert run.limit == 100
    assert run.finished_at is not None and run.wall_time >= dt.timedelta(seconds=0.25)
    assert run.serving_seconds == pytest.approx(1.0)


def test_a_short_page_finishes_the_walk_and_the_trailing_empty_page_changes_nothing():
    serve(offset=0, rows=100)
    serve(offset=100, rows=42)
    finished = ImportRun.objects.get()
    serve(offset=142, rows=0)

    run = ImportRun.objects.get()
    assert run.outcome == ImportRun.Outcome.OK
    assert (run.pages, run.object_count) == (2, 142)
    assert run.finished_at == finished.finished_at


def test_a_first_page_that_is_already_short_is_a_finished_run():
    serve(offset=0, rows=7)

    run = ImportRun.objects.get()
    assert (run.outcome, run.pages, run.object_count) == (ImportRun.Outcome.OK, 1, 7)


def test_a_whole_feed_without_limit_is_one_finished_run():
    serve(offset=0, rows=5000, limit=None, fmt="ndjson")

    run = ImportRun.objects.get()
    assert (run.outcome, run.pages, run.object_count, run.limit, run.fmt) == (
        ImportRun.Outcome.OK,
        1,
        5000,
        None,
        "ndjson",
    )


def test_a_failed_page_marks_the_walk_failed():
    serve(offset=0, rows=100)
    serve(offset=100, rows=37, outcome="failed")

    run = ImportRun.objects.get()
    assert run.outcome == ImportRun.Outcome.FAILED
    assert run.finished_at is not None
    assert run.pages == 2


def test_a_new_walk_abandons_the_unfinished_one_of_the_same_client_and_feed():
    serve(offset=0, rows=100)
    serve(offset=100, rows=100)
    serve(offset=0, rows=100)
    serve(offset=100, rows=0)

    old, new = ImportRun.objects.order_by("id")
    assert old.outcome == ImportRun.Outcome.ABANDONED and old.pages == 2
    assert new.outcome == ImportRun.Outcome.OK and (new.pages, new.object_count) == (2, 100)


def test_interleaved_walks_of_other_feeds_clients_and_queries_stay_apart():
    serve(offset=0, rows=100)
    serve(offset=0, rows=100, feed="orders")
    serve(offset=0, rows=100, client="another-client")
    serve(offset=0, rows=100, params={"modified_after": 3})
    serve(offset=100, rows=10)
    serve(offset=100, rows=20, feed="orders")
    serve(offset=100, rows=30, client="another-client")
    serve(offset=100, rows=40, params={"modified_after": 3})

    counts = sorted(ImportRun.objects.values_list("feed", "client", "params", "object_count", "outcome"), key=str)
    assert counts == [
        ("orders", IMPORTER, {}, 120, "ok"),
        ("products", "another-client", {}, 130, "ok"),
        ("products", IMPORTER, {"modified_after": 3}, 140, "ok"),
        ("products", IMPORTER, {}, 110, "ok"),
    ]


def test_a_page_that_continues_no_walk_changes_nothing():
    serve(offset=0, rows=100)
    serve(offset=100, rows=100)
    serve(offset=100, rows=100)  # a retry of a page already counted

    run = ImportRun.objects.get()
    assert (run.pages, run.object_count, run.outcome) == (2, 200, ImportRun.Outcome.RUNNING)


@pytest.mark.parametrize("offset", [0, 100])
def test_recording_a_page_costs_at_most_two_queries(django_assert_max_num_queries, offset):
    serve(offset=0, rows=100)
    with django_assert_max_num_queries(2):
        serve(offset=offset, rows=100)


def test_of_two_running_walks_expecting_the_page_only_the_newest_takes_it():
    # Two walks of one identity under way at once (their first pages raced): the page is counted
    # once, by the walk that began last.
    serve(offset=0, rows=100)
    older = ImportRun.objects.get()
    ImportRun.objects.filter(pk=older.pk).update(started_at=older.started_at - dt.timedelta(minutes=1))
    newer = ImportRun.objects.create(
        feed=older.feed,
        fmt=older.fmt,
        client=older.client,
        limit=older.limit,
        params=older.params,
        params_key=older.params_key,
        started_at=older.started_at,
        last_page_at=older.last_page_at,
        pages=1,
        object_count=100,
        byte_count=10002,
        next_offset=100,
    )

    serve(offset=100, rows=40)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.pages, older.outcome) == (1, ImportRun.Outcome.RUNNING)
    assert (newer.pages, newer.object_count, newer.byte_count, newer.next_offset) == (2, 140, 14004, 140)
    assert newer.outcome == ImportRun.Outcome.OK and newer.finished_at == newer.last_page_at
    assert newer.serving_seconds == pytest.approx(0.25)


ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"


@pytest.mark.django_db(transaction=True)
def test_a_continuing_page_is_written_without_waiting_for_the_flush_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        [session_setting] = cursor.fetchone()
    serve(offset=0, rows=100)
    with CaptureQueriesContext(connection) as queries:
        serve(offset=100, rows=100)

    [update] = queries.captured_queries  # still one statement: no BEGIN, SET or COMMIT around it
    assert update["sql"].startswith("UPDATE") and ASYNC_COMMIT in update["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == (session_setting,)  # only that statement's transaction
    run = ImportRun.objects.get()
    assert (run.pages, run.object_count, run.next_offset) == (2, 200, 200)


def test_inside_a_callers_transaction_the_write_keeps_the_callers_durability():
    serve(offset=0, rows=100)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        serve(offset=100, rows=100)

    assert not any(ASYNC_COMMIT in query["sql"] for query in queries.captured_queries)
    assert ImportRun.objects.get().pages == 2


def test_a_database_failure_while_recording_never_reaches_the_feed(caplog):
    with mock.patch.object(walks.ImportRun.objects, "create", side_effect=OperationalError("disk full")):
        results = page_served.send_robust(
            sender=None,
            feed="products",
            fmt="json",
            offset=0,
            limit=100,
            rows=1,
            bytes=10,
            duration=0.1,
            outcome="ok",
            client=IMPORTER,
            params={},
        )

    assert [r for _, r in results if isinstance(r, Exception)] == []
    assert any(r.message == "import run not recorded" for r in caplog.records)


def test_latest_complete_walks_summarises_the_newest_complete_walk_of_each_feed():
    now = timezone.now()
    serve(offset=0, rows=100)
    serve(offset=100, rows=0)  # complete, older
    ImportRun.objects.update(finished_at=now - dt.timedelta(hours=5))
    serve(offset=0, rows=100, limit=1000)
    serve(offset=1000, rows=0, limit=1000)  # complete, newest
    serve(offset=0, rows=100)  # running: not complete
    serve(offset=0, rows=5, feed="pages", outcome="failed")  # failed: not complete
    newest = ImportRun.objects.get(outcome="ok", limit=1000)
    ImportRun.objects.filter(pk=newest.pk).update(
        finished_at=now - dt.timedelta(hours=3, minutes=5), object_count=1_000_214
    )

    summary = walks.latest_complete_walks()

    assert list(summary) == ["products"]
    assert summary["products"].objects == 1_000_214
    assert summary["products"].limit == 1000
    assert summary["products"].describe(now=now) == "products last fetched by Clerk 3 h ago, 1,000,214 objects"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (86399, "23 h"), (2 * 86400, "2 d")],
)
def test_format_age_rounds_down_to_one_unit(seconds, text):
    assert format_age(dt.timedelta(seconds=seconds)) == text


# --- end to end, through the real feed views ---------------------------------------------------
def _walk(feed_client, path: str, limit: int) -> int:
    offset, seen = 0, 0
    while True:
        response = feed_client.get(path, {"limit": limit, "offset": offset})
        objects = orjson.loads(b"".join(response.streaming_content))
        if not objects:
            return seen
        seen += len(objects)
        offset += limit


def test_an_importer_walk_through_the_feed_views_is_recorded(feed_client):
    from tests.factories import ProductFactory

    ProductFactory.create_batch(5)

    seen = _walk(feed_client, "/feed/products.json", limit=2)

    run = ImportRun.objects.get()
    assert seen == 5
    assert (run.feed, run.fmt, run.limit, run.outcome) == ("products", "json", 2, ImportRun.Outcome.OK)
    assert (run.pages, run.object_count) == (3, 5)  # 2 + 2 + 1: the short page ends the walk
    assert run.client  # an opaque identity, never the token
    assert "test-importer-token" not in run.client


def test_a_feed_failing_mid_stream_is_recorded_as_failed(feed_client, monkeypatch):
    from feeds.declarations import ProductFeed
    from tests.factories import ProductFactory

    ProductFactory.create_batch(3)
    shape = ProductFeed.to_object
    calls = iter(range(100))

    def failing(self, row):
        if next(calls) == 1:
            raise RuntimeError("boom")
        return shape(self, row)

    monkeypatch.setattr(ProductFeed, "to_object", failing)
    monkeypatch.setattr("feeds.pagination.BATCH_SIZE", 1)

    response = feed_client.get("/feed/products.json")
    with pytest.raises(RuntimeError):
        b"".join(response.streaming_content)

    run = ImportRun.objects.get()
    assert (run.outcome, run.limit, run.object_count) == (ImportRun.Outcome.FAILED, None, 1)


def test_feeds_whose_latest_walk_failed_ignores_older_failures_and_running_walks():
    serve(offset=0, rows=5, feed="pages", outcome="failed")
    serve(offset=0, rows=5, feed="pages")  # newer, complete: pages recovered
    serve(offset=0, rows=5, feed="orders")
    serve(offset=0, rows=5, feed="orders", outcome="failed", client="other")  # newest: failed
    serve(offset=0, rows=100, feed="orders")  # running: not finished, ignored

    assert walks.feeds_whose_latest_walk_failed() == ["orders"]


# --- the recording thread (CLERK_WALKS_IN_BACKGROUND, on in production) ----------------------
@pytest.fixture(autouse=True)
def _recording_thread_stopped():
    """The recording thread holds its own database connection: ended after each test."""
    yield
    assert walks.RECORDER.stop(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_in_background_the_pages_are_written_by_the_recording_thread_in_order(settings):
    settings.CLERK_WALKS_IN_BACKGROUND = True
    writers = []
    record = walks._record

    def spy(**page):
        writers.append(__import__("threading").current_thread().name)
        return record(**page)

    with mock.patch.object(walks, "_record", spy), CaptureQueriesContext(connection) as request_queries:
        for offset in (0, 100, 200, 300):
            serve(offset=offset, rows=100 if offset < 300 else 40)
        assert walks.RECORDER.flush(timeout=10)

    # Nothing for the request's own connection: the page's bookkeeping is off its path.
    assert not [q for q in request_queries.captured_queries if "feeds_importrun" in q["sql"]]
    assert writers == ["feeds-walks"] * 4
    run = ImportRun.objects.get()
    assert (run.pages, run.object_count, run.outcome) == (4, 340, ImportRun.Outcome.OK)


@pytest.mark.django_db(transaction=True)
def test_in_background_a_database_failure_is_logged_and_the_thread_goes_on(settings, caplog):
    settings.CLERK_WALKS_IN_BACKGROUND = True
    with mock.patch.object(walks.ImportRun.objects, "create", side_effect=OperationalError("disk full")):
        serve(offset=0, rows=100)
        assert walks.RECORDER.flush(timeout=10)
    serve(offset=0, rows=10)
    assert walks.RECORDER.flush(timeout=10)

    assert any(r.message == "import run not recorded" for r in caplog.records)
    assert ImportRun.objects.get().object_count == 10


def test_in_background_a_full_backlog_drops_the_page_with_a_warning(settings, caplog, monkeypatch):
    settings.CLERK_WALKS_IN_BACKGROUND = True
    monkeypatch.setattr(walks._Recorder, "BACKLOG", 0)
    recorder = walks._Recorder()
    monkeypatch.setattr(walks, "RECORDER", recorder)

    serve(offset=0, rows=100)

    assert recorder.flush(timeout=10)
    assert [r.error for r in caplog.records if r.message == "import run not recorded"] == ["backlog full"]
    assert not ImportRun.objects.exists()
