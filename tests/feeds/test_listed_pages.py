"""Exact cold pages of the personal feeds (customers, orders): positions in `feeds.listing`.

A cold page (no cursor) starts after the row at position offset - 1 of the feed's listing, so
it is the page the walk would have been served, whatever its offset: a retry returns the same
rows, a walk advancing by rows served is exact, and rows that left the feed during the walk
never make a later page skip (their positions stay until `LONGEST_WALK` after they left).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import orjson
import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feeds import listing, pagination
from feeds.models import FeedListing
from feeds.params import FeedParams
from feeds.registry import FEEDS
from feeds.stream import feed_chunks
from gdpr.models import ConsentRecord, Purpose, Source
from gdpr.policy import eligible_customers
from shop.models import Customer
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
PERSONAL = ["customers", "orders"]


def page(feed, *, limit, offset, now=None, client="importer"):
    params = FeedParams(limit=limit, offset=offset)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


def refresh(feed, now=None):
    rows = FEEDS[feed](now=now).selection()
    return listing.refresh(feed, rows.values_list(FEEDS[feed].pk_name(), flat=True), now=now)


def cold_walk(feed, *, limit, by_served=False, now=None):
    served, offset = [], 0
    while True:
        cache.clear()
        ids = page(feed, limit=limit, offset=offset, now=now)
        if not ids:
            return served
        served += ids
        offset += len(ids) if by_served else limit
        assert offset < 10_000, "the walk never ended"


def make(feed, ids):
    for pk in ids:
        if feed == "customers":
            CustomerFactory(id=pk)
        else:
            OrderFactory(id=pk, customer=None, terms_accepted_at=timezone.now() - dt.timedelta(days=5))


@pytest.mark.parametrize("feed", PERSONAL)
@pytest.mark.parametrize("listed", [False, True])
@pytest.mark.parametrize("by_served", [False, True])
def test_a_cold_walk_of_unchanged_data_is_exact(shop, feed, listed, by_served):
    if listed:
        refresh(feed)
    assert cold_walk(feed, limit=7, by_served=by_served) == shop.eligible[feed]


@pytest.mark.parametrize("feed", PERSONAL)
def test_a_cold_page_at_any_offset_is_the_walks_page(shop, feed):
    walked = []
    offset = 0
    while ids := page(feed, limit=4, offset=offset, client="walker"):
        walked.append(ids)
        offset += 4
    for k, expected in enumerate(walked):
        cache.clear()
        assert page(feed, limit=4, offset=4 * k) == expected
    for offset in range(0, len(shop.eligible[feed]) + 3):  # offsets that are not multiples of the limit
        cache.clear()
        assert page(feed, limit=4, offset=offset) == shop.eligible[feed][offset : offset + 4]


@pytest.mark.parametrize("feed", PERSONAL)
def test_a_retried_page_returns_the_same_rows(shop, feed):
    assert page(feed, limit=5, offset=0) == shop.eligible[feed][:5]
    first = page(feed, limit=5, offset=5)  # releases the cursor of offset 5
    assert page(feed, limit=5, offset=5) == first == shop.eligible[feed][5:10]
    assert page(feed, limit=5, offset=10) == shop.eligible[feed][10:15]


def test_a_retry_after_changes_returns_the_same_rows_and_the_walk_goes_on_exactly():
    make("customers", range(10, 60, 2))
    refresh("customers")
    assert page("customers", limit=5, offset=0) == [10, 12, 14, 16, 18]
    first = page("customers", limit=5, offset=5)
    assert first == [20, 22, 24, 26, 28]
    make("customers", [5, 23])  # behind the walk and inside the page's range
    refresh("customers")  # both listed: the positions move up
    ledger(26, granted=False)  # leaves the feed
    assert page("customers", limit=5, offset=5) == [20, 22, 23, 24, 28]  # what is left, plus what entered
    served = []
    offset = 10
    while ids := page("customers", limit=5, offset=offset):
        served += ids
        offset += 5
    assert served == list(range(30, 60, 2))  # no repeat, no skip


def test_a_walk_advancing_by_rows_served_is_exact_while_rows_enter_behind_and_leave_ahead():
    make("customers", range(10, 90, 2))
    refresh("customers")
    served, offset, withdrawn = [], 0, set()
    while ids := page("customers", limit=5, offset=offset):
        served += ids
        offset += len(ids)
        make("customers", [ids[-1] - 1])  # enters behind the walk: positions move up
        if ids[-1] + 4 < 90:
            ledger(ids[-1] + 4, granted=False)  # leaves ahead of the walk
            withdrawn.add(ids[-1] + 4)
    assert served == sorted(set(range(10, 90, 2)) - withdrawn), "every row once, none withdrawn served"


def test_rows_that_leave_behind_a_cold_walk_never_make_it_skip():
    make("customers", range(1, 31))
    served, offset = [], 0
    while True:
        cache.clear()
        ids = page("customers", limit=4, offset=offset)
        if not ids:
            break
        served += ids
        offset += 4
        # The first customer served on this page objects: they leave the feed behind the walk.
        objection(ids[0])
        refresh("customers")  # the reconciliation unlists them meanwhile
    assert served == list(range(1, 31))
    assert FeedListing.objects.filter(feed="customers", listed=False).count() == 8


def test_an_order_that_ages_out_between_pages_never_makes_the_next_cold_page_skip():
    """Was `test_cold_seek_skips_an_eligible_order_when_another_ages_out_…` before listings."""
    t0 = timezone.now()
    window = dt.timedelta(days=730)
    OrderFactory(id=1, placed_at=t0 - window + dt.timedelta(seconds=1))  # leaves the window at t0+1s
    OrderFactory(id=2)
    OrderFactory(id=3)
    assert page("orders", limit=1, offset=0, now=t0) == [1]
    cache.clear()
    later = t0 + dt.timedelta(seconds=2)
    refresh("orders", now=later)  # even unlisted, order 1 keeps its position
    assert page("orders", limit=1, offset=1, now=later) == [2]
    assert page("orders", limit=1, offset=2, now=later) == [3]
    assert page("orders", limit=1, offset=3, now=later) == []


def test_a_row_unlisted_longer_than_the_longest_walk_loses_its_position():
    make("customers", range(1, 6))
    refresh("customers")
    Customer.objects.filter(id=1).update(erased_at=timezone.now())
    now = timezone.now()
    assert refresh("customers", now=now) == {"listed": 0, "unlisted": 1, "removed": 0}
    assert refresh("customers", now=now + pagination.LONGEST_WALK + dt.timedelta(seconds=1))["removed"] == 1
    cache.clear()
    assert page("customers", limit=2, offset=2) == [4, 5]


def test_a_listed_range_whose_rows_all_left_is_never_served_as_the_end():
    make("customers", range(1, 13))
    refresh("customers")
    for pk in range(3, 9):  # two whole ranges of limit 3 leave the feed
        objection(pk)
    assert page("customers", limit=3, offset=0) == [1, 2]  # the range 1-3
    assert page("customers", limit=3, offset=3) == [9]  # 4-6 left, not `[]`: the range 7-9
    assert page("customers", limit=3, offset=6) == [10, 11, 12]
    assert page("customers", limit=3, offset=9) == []


def test_an_eligible_row_missing_from_the_listing_is_served_and_listed():
    make("customers", range(1, 11))
    refresh("customers")
    FeedListing.objects.filter(feed="customers", object_id__in=[4, 5]).delete()  # e.g. a missed event
    assert page("customers", limit=4, offset=0) == [1, 2, 3, 4]
    assert set(FeedListing.objects.filter(feed="customers").values_list("object_id", flat=True)) >= {4}
    assert page("customers", limit=4, offset=4) == [5, 6, 7, 8]
    assert FeedListing.objects.filter(feed="customers").count() == 10


def test_refresh_lists_the_eligible_and_unlists_the_rest():
    make("customers", range(1, 6))
    assert refresh("customers") == {"listed": 5, "unlisted": 0, "removed": 0}
    Customer.objects.filter(id=2).update(erased_at=timezone.now())
    assert refresh("customers") == {"listed": 0, "unlisted": 1, "removed": 0}
    listed = FeedListing.objects.filter(feed="customers", listed=True).values_list("object_id", flat=True)
    assert sorted(listed) == [1, 3, 4, 5]
    assert sorted(eligible_customers().values_list("pk", flat=True)) == [1, 3, 4, 5]


# --- queries per page ---------------------------------------------------------------------------
def count_queries(feed, *, limit, offset):
    with CaptureQueriesContext(connection) as queries:
        b"".join(feed_chunks(feed, params=FeedParams(limit=limit, offset=offset), client="count"))
    return len(queries)


# A listed page: its bounds (the listed ids), the rows, a query per related list, the holdings.
LISTED_PAGE_QUERIES = {"customers": 3, "orders": 4}


@pytest.mark.parametrize("feed", PERSONAL)
def test_queries_per_listed_page(shop, feed):
    assert count_queries(feed, limit=3, offset=0) == LISTED_PAGE_QUERIES[feed] + 1  # lists the rows it served
    assert count_queries(feed, limit=3, offset=0) == LISTED_PAGE_QUERIES[feed]
    refresh(feed)
    count_queries(feed, limit=3, offset=3)
    assert count_queries(feed, limit=3, offset=6) == LISTED_PAGE_QUERIES[feed]  # by cursor
    cache.clear()
    deep = len(shop.eligible[feed]) - 3
    assert count_queries(feed, limit=3, offset=deep) == LISTED_PAGE_QUERIES[feed] + 1  # one seek
    cache.clear()
    # Past the listing: the seek, its size, the live rows beyond it (none); nothing to read.
    assert count_queries(feed, limit=3, offset=deep + 10) == 3


# --- the property: walks with changes, evictions, retries, both ways of advancing ---------------
@st.composite
def eventful_walks(draw):
    step = st.fixed_dictionaries(
        {
            "leave": st.lists(st.tuples(st.sampled_from(["behind", "anywhere"]), st.integers(0, 10_000)), max_size=2),
            "come_back": st.lists(st.integers(0, 10_000), max_size=1),
            "insert": st.lists(st.integers(1, 120), max_size=2),
            "evict": st.sampled_from(["none", "none", "all"]),
            # a retry of the page just served, before or after this step's changes
            "retry": st.sampled_from(["no", "at once", "after the changes"]),
            "refresh": st.booleans(),
        }
    )
    return {
        "initial": sorted(draw(st.sets(st.integers(1, 120), min_size=3, max_size=40))),
        "listed": draw(st.booleans()),
        "limit": draw(st.integers(1, 9)),
        "by_served": draw(st.booleans()),
        "steps": draw(st.lists(step, max_size=20)),
    }


def objection(pk, granted=False):
    ConsentRecord.objects.create(
        customer_id=pk, purpose=Purpose.THIRD_PARTY_SHARING, granted=granted, at=timezone.now(), source=Source.ADMIN
    )


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=eventful_walks())
def test_property_cold_and_retried_pages_never_skip_and_walks_finding_their_cursors_are_exact(db, plan):
    # Each example in a transaction rolled back (the consent ledger is append-only).
    with transaction.atomic():
        eventful_walk(plan)
        transaction.set_rollback(True)


def eligible_now():
    return set(eligible_customers().values_list("pk", flat=True))


def eventful_walk(plan):
    """One walk, taking each retry's answer as an importer does. Never a skip; when every page
    found its cursor (no eviction), every row in the feed for the whole walk is served exactly
    once, whatever changed, retries and rows-served advances included."""
    cache.clear()
    pagination.forget_unsaved_cursors()
    Customer.objects.bulk_create(CustomerFactory.build(id=pk) for pk in plan["initial"])
    if plan["listed"]:
        refresh("customers")
    alive, left, changed, evicted, emptied = set(plan["initial"]), set(), False, False, False
    limit = plan["limit"]

    def apply(change, served):
        nonlocal changed, evicted
        for where, index in change["leave"]:
            candidates = sorted(alive & set(served) if where == "behind" else alive)
            if candidates:
                row = candidates[index % len(candidates)]
                objection(row)
                alive.discard(row)
                left.add(row)
                changed = True
        for index in change["come_back"]:
            if left:
                row = sorted(left)[index % len(left)]
                objection(row, granted=True)
                alive.add(row)
                changed = True
        fresh = set(change["insert"]) - alive - left
        Customer.objects.bulk_create(CustomerFactory.build(id=pk) for pk in sorted(fresh))
        alive.update(fresh)
        changed = changed or bool(fresh)
        if change["refresh"]:
            refresh("customers")
        if change["evict"] == "all":
            cache.clear()
            evicted = True

    served, offset = [], 0
    for step in range(10_000):
        ids = page("customers", limit=limit, offset=offset)
        assert set(ids) <= eligible_now(), "served an ineligible row"
        change = plan["steps"][step] if step < len(plan["steps"]) else None
        if change is not None and change["retry"] != "no":
            before = eligible_now()
            if change["retry"] == "after the changes":
                apply(change, served + ids)
            stable = before & eligible_now()
            again = page("customers", limit=limit, offset=offset)
            assert set(again) <= eligible_now(), "a retry served an ineligible row"
            kept = [pk for pk in ids if pk in stable]
            if not kept:
                # Every row of the page left before the retry: it serves the next rows instead
                # (never `[]` before the end), and the next page repeats them. The empty page
                # past the end keeps no cursor: its retry is a cold page (rows listed behind
                # the walk since come again).
                emptied = True
            elif not evicted:
                # The same rows, less those that left meanwhile, plus those that entered
                # within the page's range (then the page may end earlier, never later).
                again_kept = [pk for pk in again if pk in stable]
                assert again_kept == kept[: len(again_kept)], "a retry returned other rows"
                if set(again) <= set(ids):
                    assert again_kept == kept, "a retry returned other rows"
            ids = again
            if change["retry"] == "after the changes":
                change = None  # applied
        if not ids:
            break
        served += ids
        offset += len(ids) if plan["by_served"] else limit
        assert offset <= 100 * limit + 200, "the walk never ended"
        if change is not None:
            apply(change, served)

    lived_through = set(plan["initial"]) - left
    assert lived_through <= set(served), "a row that was in the feed for the whole walk was skipped"
    if not evicted and not emptied:
        counts = Counter(served)
        assert [pk for pk in sorted(lived_through) if counts[pk] != 1] == [], "a walk finding its cursors is exact"
    if not changed:
        assert served == sorted(plan["initial"]), "a walk over unchanged data is exact, cold pages included"


# --- the counts (PostgreSQL) --------------------------------------------------------------------
def test_positions_are_counted_per_bucket_on_postgresql_and_seek_alike_without_the_counts():
    if connection.vendor != "postgresql":
        pytest.skip("the counting triggers are PostgreSQL-only")
    ids = [3, 4_000, 4_096, 4_097, 9_000, 20_000, 20_001]
    listing.add("customers", ids)
    listing.add("orders", [1, 2])
    FeedListing.objects.filter(feed="customers", object_id=4_096).update(listed=False)  # keeps its position
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bucket, row_count FROM feeds_rankbucket WHERE table_name = 'feeds_feedlisting:customers' "
            "ORDER BY bucket"
        )
        assert cursor.fetchall() == [(0, 2), (1, 2), (2, 1), (4, 2)]
    counted = [listing.key_at("customers", p) for p in range(9)]
    assert counted == [*ids, None, None]
    # Answered by the counts themselves (`feeds.rank_index.counted_seek`), not the plain seek.
    assert [listing._counted_key_at("customers", p) for p in (0, 3, 6, 7)] == [
        (True, 3),
        (True, 4_097),
        (True, 20_001),
        (True, None),
    ]
    assert listing.positions("customers") == (7, 20_001)
    FeedListing.objects.filter(feed="customers", object_id__in=[4_000, 9_000]).delete()
    assert [listing.key_at("customers", p) for p in range(5)] == [3, 4_096, 4_097, 20_000, 20_001]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE feeds_feedlisting DISABLE TRIGGER feeds_listing_delete")
    assert listing._counted_key_at("customers", 0) == (False, None)  # unarmed: the plain seek
    assert [listing.key_at("customers", p) for p in range(6)] == [3, 4_096, 4_097, 20_000, 20_001, None]
    assert listing.positions("customers") == (5, 20_001)


# --- consent changes move the positions in their own transaction ----------------------------------
def ledger(pk, *, granted):
    from gdpr.ledger import record_consent

    record_consent(
        customer=pk,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=granted,
        at=timezone.now(),
        source="admin",
        evidence="test",
    )


def test_a_withdrawal_unlists_and_a_grant_lists_in_the_same_transaction():
    make("customers", range(1, 6))
    OrderFactory(id=50, customer_id=3)
    refresh("customers")
    refresh("orders")
    ledger(3, granted=False)
    rows = dict(FeedListing.objects.filter(object_id__in=[3, 50]).values_list("object_id", "listed"))
    assert rows == {3: False, 50: False}
    ledger(3, granted=True)
    rows = dict(FeedListing.objects.filter(object_id__in=[3, 50]).values_list("object_id", "listed"))
    assert rows == {3: True, 50: True}


def test_a_walk_advancing_by_rows_served_skips_nothing_while_customers_withdraw_ahead_of_it():
    """Each withdrawal unlists a row the walk had not reached: it keeps its position (a walk
    may have passed it), so the next cold page starts one row early: one duplicate each."""
    make("customers", range(1, 41))
    refresh("customers")
    served, offset, withdrawn = [], 0, set()
    while ids := page("customers", limit=5, offset=offset):
        served += ids
        offset += len(ids)
        assert len(ids) == 5 or not page("customers", limit=5, offset=offset + 5), "full pages until the end"
        if ids[-1] + 3 <= 40:
            ledger(ids[-1] + 3, granted=False)
            withdrawn.add(ids[-1] + 3)
        cache.clear()  # every page is a cold page
    assert sorted(set(served)) == sorted(set(range(1, 41)) - withdrawn), "none skipped, none withdrawn served"
    assert len(served) - len(set(served)) <= len(withdrawn)


def test_the_workers_reconciliation_also_refreshes_the_listings():
    from clerk import hooks

    make("customers", range(1, 4))
    report = hooks.reconciliation()()
    assert "listings: " in str(report) and "customers {'listed': 3" in str(report)
    assert FeedListing.objects.filter(feed="customers", listed=True).count() == 3


def test_the_feed_listing_command_refreshes_every_personal_feed():
    from io import StringIO

    from django.core.management import call_command

    make("customers", range(1, 4))
    out = StringIO()
    call_command("feed_listing", stdout=out)
    assert "customers: {'listed': 3, 'unlisted': 0, 'removed': 0}" in out.getvalue()
    assert "orders: " in out.getvalue()
