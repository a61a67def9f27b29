"""Walk safety: a walk may serve a row twice, never skip one that was in the feed throughout.

Clerk deletes what a feed leaves out, and a request names no walk; see `feeds.pagination` for
the rule (when in doubt, start earlier) and the guarantee these tests hold it to.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import orjson
import pytest
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from clerk.models import Action, ClerkDeletion, Reason, Status
from clerk.outbox import deletion_queued_since
from feeds import pagination, stream
from feeds.params import FeedParams
from feeds.registry import FEEDS
from feeds.stream import feed_chunks
from gdpr.receivers import OBJECT_TYPES
from shop.models import Page, Product
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db


def page(feed, *, limit, offset, client="importer", now=None, modified_after=None):
    params = FeedParams(limit=limit, offset=offset, modified_after=modified_after)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


# --- the review's findings: each skipped a row before the fix ---------------------------------


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


# --- cursors: pending per walk, merged by minimum, never raised --------------------------------


def cursors(client="importer", limit=2):
    return pagination.Cursors(feed="products", walk=FeedParams(limit=limit).walk(), client=client)


def test_a_cursor_is_only_ever_lowered_by_later_writes():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    walks.advance(served=0, next_offset=2, last_pk=30)  # a concurrent walk ended further on
    assert walks.get(2) == 20
    walks.advance(served=0, next_offset=2, last_pk=15)  # ...or earlier: it must not skip
    assert walks.get(2) == 15


def test_a_cursor_stays_while_any_walk_still_waits_on_it():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)  # walk A
    walks.advance(served=0, next_offset=2, last_pk=30)  # walk B, same identity
    walks.advance(served=2, next_offset=4, last_pk=40)  # A served its page at 2
    assert walks.get(2) == 20  # B still waits there: it gets the lower key, never A's
    walks.advance(served=2, next_offset=4, last_pk=50)  # B served its page at 2
    assert walks.get(2) is None
    assert walks.get(4) == 40


def test_a_walk_that_ended_leaves_no_cursor_for_the_next_walk_of_its_identity():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    walks.advance(served=2, next_offset=4, last_pk=40)
    walks.walk_ended(4)  # the empty page
    assert cache.get(walks.key) is None
    walks.advance(served=0, next_offset=2, last_pk=25)  # the next walk, after rows changed
    assert walks.get(2) == 25


def test_back_to_back_walks_of_one_client_with_a_deletion_between_them_are_exact():
    """A walk that ended leaves no cursor behind: the next walk, after a row it would have
    served left, is not pulled back to the previous walk's positions (no repeats)."""
    for pk in (10, 20, 30, 40, 50, 60):
        ProductFactory(id=pk)

    def walk():
        served, offset = [], 0
        while ids := page("products", limit=2, offset=offset):
            served += ids
            offset += 2
        return served

    assert walk() == [10, 20, 30, 40, 50, 60]
    Product.objects.filter(pk=10).delete()
    assert walk() == [20, 30, 40, 50, 60]


def test_cursors_expire_ten_minutes_after_each_write(monkeypatch):
    timeouts = []

    class Recording:
        def __getattr__(self, name):
            return getattr(cache, name)

        def set(self, key, value, timeout):
            timeouts.append(timeout)
            cache.set(key, value, timeout)

    monkeypatch.setattr(pagination, "cache", Recording())
    cursors().advance(served=0, next_offset=2, last_pk=20)
    cursors().advance(served=0, next_offset=2, last_pk=30)
    assert timeouts == [600, 600]


def test_an_expired_wait_is_dropped_even_while_the_identity_stays_busy(monkeypatch):
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)  # a walk that is abandoned here
    later = time.time() + pagination.CURSOR_TTL_SECONDS + 1
    monkeypatch.setattr(pagination.time, "time", lambda: later)
    assert walks.get(2) is None
    walks.advance(served=0, next_offset=2, last_pk=30)  # the next walk is not pulled back
    assert walks.get(2) == 30


def test_a_write_waits_for_the_lock_of_a_concurrent_write_and_keeps_the_lower_key():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=40)
    lock = f"{walks.key}:lock"
    assert cache.add(lock, 1, 60)  # another walk's write is under way
    writer = threading.Thread(target=walks.advance, kwargs={"served": 0, "next_offset": 2, "last_pk": 30})
    writer.start()
    time.sleep(0.05)
    assert walks.get(2) == 40  # the waiting write has not overwritten anything
    state = cache.get(walks.key)
    state[2][0] = 20  # the other write stores its lower key, then unlocks
    cache.set(walks.key, state)
    cache.delete(lock)
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert walks.get(2) == 20


def test_a_write_that_never_gets_the_lock_removes_the_cursors_and_keeps_its_own_here(monkeypatch):
    monkeypatch.setattr(pagination, "LOCK_SECONDS", 0.05)
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=40)
    assert cache.add(f"{walks.key}:lock", 1, 60)  # held by a writer that died
    walks.advance(served=0, next_offset=2, last_pk=30)
    assert cache.get(walks.key) is None  # other processes seek early
    assert walks.get(2) == 30  # this process continues exactly
    assert cursors(client="another").get(2) is None


def test_a_failed_write_removes_the_cursors_so_other_processes_seek_early(monkeypatch):
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=40)

    def failing_set(*args, **kwargs):
        raise ConnectionError("write timeout")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "set", failing_set)
        walks.advance(served=0, next_offset=2, last_pk=30)
    assert cache.get(walks.key) is None
    assert walks.get(2) == 30
    walks.advance(served=0, next_offset=2, last_pk=35)  # a later successful write carries the lower key kept here
    assert cache.get(walks.key)[2][0] == 30


def test_a_failed_release_leaves_the_cursor_which_only_costs_duplicates(monkeypatch):
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)

    def failing_add(*args, **kwargs):
        raise ConnectionError("cache down")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "add", failing_add)
        walks.walk_ended(2)  # never raises
    assert walks.get(2) == 20


# --- cold seeks: a margin that grows with the offset ------------------------------------------


def make_pages(ids, *, updated_at=None):
    Page.objects.bulk_create(
        Page(
            id=i,
            type="cms",
            url=f"https://shop.example/{i}",
            title=f"t{i}",
            text="x",
            updated_at=updated_at or timezone.now(),
        )
        for i in ids
    )


@pytest.fixture
def no_cursors(settings):
    """A cache that never keeps anything: every page after the first is a cold seek."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


def test_consecutive_cold_pages_skip_nothing_when_a_served_row_leaves_between_each(no_cursors):
    make_pages(range(1, 101))
    served, offset = [], 0
    while ids := page("pages", limit=10, offset=offset):
        served += ids
        offset += 10
        # A served row leaves behind the walk: every later position shifts down by one.
        Page.objects.filter(id=Page.objects.order_by("id").values("id")[:1]).delete()
        assert offset <= 300
    assert set(served) == set(range(1, 101))


def cold_walk_pages(feed="pages", *, limit=10):
    pages, offset = [], 0
    while True:
        pages.append(page(feed, limit=limit, offset=offset))
        if not pages[-1]:
            return pages
        offset += limit
        assert len(pages) <= 100, "the walk never ended"


def test_a_cold_walk_of_a_static_catalogue_is_exact(no_cursors):
    make_pages(range(1, 41))
    pages = cold_walk_pages()
    assert [i for ids in pages for i in ids] == list(range(1, 41))
    assert len(pages) == 5


def test_a_cold_walk_after_a_recent_deletion_repeats_a_few_rows_and_still_ends_with_an_empty_page(no_cursors):
    make_pages(range(1, 42))
    Page.objects.filter(id=41).delete()  # queued in the outbox: cold pages keep their margin
    pages, offset = [], 0
    while True:
        pages.append(page("pages", limit=10, offset=offset))
        if not pages[-1]:
            break
        offset += 10
    served = [i for ids in pages for i in ids]
    assert sorted(set(served)) == list(range(1, 41))
    # Each cold page starts ⌈O/10⌉ rows early, one row more than the page before: 4 repeats in all.
    assert len(served) - 40 == pagination.cold_seek_margin(40)
    assert len(pages) == 6


def test_a_cold_page_far_past_the_end_is_empty():
    make_pages(range(1, 41))
    assert page("pages", limit=10, offset=40) == []  # exact: after position 39, the last row
    assert page("pages", limit=10, offset=50) == []  # exact: position 49 is past the end
    make_pages([41])
    Page.objects.filter(id=41).delete()
    assert page("pages", limit=10, offset=45) == []  # position 45 - 1 - 5 = 39: the last row


def test_a_cold_page_whose_margin_reaches_the_first_row_reads_from_the_start():
    make_pages([4, 5, 6, 7])
    Page.objects.filter(id=4).delete()
    assert page("pages", limit=1, offset=1) == [5]  # ⌈1/10⌉ = 1 row early


# --- cold seeks on the catalogue: exact unless a row may have left during the walk --------------


@pytest.mark.parametrize("feed", ["products", "categories", "pages"])
def test_a_cold_catalogue_walk_with_a_deletion_behind_it_before_each_page_never_skips(no_cursors, shop, feed):
    model = FEEDS[feed].model
    served, offset = [], 0
    while ids := page(feed, limit=10, offset=offset):
        served += ids
        offset += 10
        # The lowest served row still there leaves: every later position shifts down by one.
        model.objects.filter(pk=model.objects.filter(pk__in=served).order_by("pk").values("pk")[:1]).delete()
        assert offset <= 300
    # An exact seek would skip one row per page; the margin (⌈O/10⌉ = one more row per page)
    # catches up exactly the rows that left.
    assert sorted(set(served)) == shop.eligible[feed]


def test_a_deletion_during_a_run_of_cursor_pages_still_gives_the_later_cold_page_its_margin(shop):
    """Cursor pages do not restore positions: a row that left at any time since the walk began
    shifts the position of a later cold page, so the outbox is asked about the whole walk."""
    ids = shop.eligible["products"]
    served = page("products", limit=5, offset=0)
    Product.objects.filter(id=ids[0]).delete()
    for offset in (5, 10):
        served += page("products", limit=5, offset=offset)  # by cursor: exact
    assert served == ids[:15]
    cache.clear()
    served += page("products", limit=5, offset=15)  # exact, it would start at ids[16]
    assert pagination.cold_seek_margin(15) == 2
    assert served[15:] == ids[14:19]  # position 12 of the feed now is ids[13]


def test_a_deletion_older_than_the_longest_walk_no_longer_costs_a_margin(shop):
    ids = shop.eligible["pages"]
    Page.objects.filter(id=ids[-1]).delete()
    cache.clear()
    assert page("pages", limit=5, offset=10) == ids[9:14]  # margin: ⌈10/10⌉ = 1 row early
    # The same deletion, delivered to Clerk, from before the longest walk began.
    long_ago = timezone.now() - pagination.LONGEST_WALK - dt.timedelta(minutes=1)
    ClerkDeletion.objects.update(
        created_at=long_ago - dt.timedelta(minutes=5), next_attempt_at=long_ago, status=Status.DELIVERED
    )
    cache.clear()
    assert page("pages", limit=5, offset=10) == ids[10:15]


def test_a_deletion_committed_just_after_the_outbox_is_asked_cannot_make_the_cold_page_skip(shop, monkeypatch):
    """The outbox is asked after the exact seek: a deletion that commits between the two was
    not counted by the seek. (Asked before the seek, the seek would count it and skip a row.)"""
    ids = shop.eligible["products"]
    asked = []

    def then_a_deletion_commits(object_type, since):
        answer = deletion_queued_since(object_type, since)
        asked.append(answer)
        Product.objects.filter(id=ids[0]).delete()
        return answer

    monkeypatch.setattr(stream, "deletion_queued_since", then_a_deletion_commits)
    assert page("products", limit=5, offset=10) == ids[10:15]
    assert asked == [False]


def test_catalogue_feeds_are_named_as_the_outbox_queues_the_deletions_of_their_rows():
    """`deletion_queued_since(feed.name, …)` must see every deletion of the feed's rows."""
    catalogue = [cls for cls in FEEDS.values() if cls.rows_leave_only_by_deletion]
    assert catalogue
    for cls in catalogue:
        assert OBJECT_TYPES[cls.model] == cls.name


# --- the outbox question: may a row of this type have been deleted since? ----------------------


def queued(status, *, created, next_attempt, object_type="products"):
    ClerkDeletion.objects.create(
        action=Action.DELETE,
        object_type=object_type,
        object_id=7,
        reason=Reason.DELETED,
        status=status,
        created_at=created,
        next_attempt_at=next_attempt,
    )


def test_a_deletion_queued_since_is_seen_of_its_own_type_only():
    now = timezone.now()
    five_minutes_ago = now - dt.timedelta(minutes=5)
    queued(Status.DELIVERED, created=five_minutes_ago, next_attempt=five_minutes_ago, object_type="pages")
    assert deletion_queued_since("pages", now - dt.timedelta(hours=1))
    assert not deletion_queued_since("pages", now)
    assert not deletion_queued_since("products", now - dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("status", "next_attempt_hours_ago", "seen"),
    [
        (Status.PENDING, 30, True),  # a later deletion of the same id may have relied on it
        (Status.DELIVERED, 2, True),  # ...and been delivered since
        (Status.FAILED, 2, True),
        (Status.DELIVERED, 30, False),
        (Status.FAILED, 30, False),
        (Status.SUPERSEDED, 2, False),  # its object was back: a later deletion queued its own row
    ],
)
def test_an_older_deletion_counts_while_a_later_deletion_of_its_id_may_have_relied_on_it(
    status, next_attempt_hours_ago, seen
):
    now = timezone.now()
    queued(status, created=now - dt.timedelta(hours=48), next_attempt=now - dt.timedelta(hours=next_attempt_hours_ago))
    assert deletion_queued_since("products", now - dt.timedelta(hours=6)) is seen


def test_deleting_a_recreated_row_whose_first_deletion_is_pending_still_counts():
    """`queue_deletions` queues no second row for an id that has a pending one."""
    product = ProductFactory(id=7)
    product.delete()
    ClerkDeletion.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    ProductFactory(id=7).delete()
    assert ClerkDeletion.objects.count() == 1
    assert deletion_queued_since("products", timezone.now() - dt.timedelta(hours=6))


# --- the property ------------------------------------------------------------------------------
WINDOW_DAYS = 1
TICK = dt.timedelta(minutes=1)


@st.composite
def eventful_walks(draw):
    """A walk with changes between its pages, and either cache evictions or a second walk.

    With evictions, at most one row leaves the feed between two pages and pages hold 10 rows or
    more: the budget of consecutive cold pages (see `feeds.pagination`). Evictions and a
    concurrent walk of the same identity are not combined: an evicted cursor rewritten by the
    other walk before this one reads it is the documented residual risk.

    Filtered walks (`modified_after`) lose rows by deletion and as the cutoff moves; unfiltered
    ones only by deletion, so their cold pages seek exactly until the first deletion.
    """
    evictions = draw(st.booleans())
    concurrent = not evictions and draw(st.booleans())
    filtered = draw(st.booleans())
    limit = draw(st.integers(10, 14) if evictions else st.integers(1, 12))
    # Rows leaving behind the walk shift positions; rows ahead of it just never come.
    kinds = ["delete", "age"] if filtered else ["delete"]
    leaving = st.tuples(st.sampled_from(kinds), st.sampled_from(["behind", "anywhere"]), st.integers(0, 10_000))
    step = st.fixed_dictionaries(
        {
            "leave": st.lists(leaving, max_size=1 if evictions else 3),
            "insert": st.lists(st.integers(1, 300), max_size=3),
            "evict": st.sampled_from(["none", "next", "all"]) if evictions else st.just("none"),
        }
    )
    return {
        "initial": sorted(draw(st.sets(st.integers(1, 300), min_size=10, max_size=60))),
        "limit": limit,
        "steps": draw(st.lists(step, max_size=25)),
        "concurrent": concurrent,
        "filtered": filtered,
        "second_walk_from": draw(st.integers(0, 8)),
    }


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=eventful_walks())
def test_property_every_row_in_the_feed_for_the_whole_walk_is_served_at_least_once(db, plan):
    Page.objects.all().delete()
    ClerkDeletion.objects.all().delete()  # the previous example's deletions are not this walk's
    cache.clear()
    pagination.forget_unsaved_cursors()
    limit, now = plan["limit"], timezone.now()
    make_pages(plan["initial"], updated_at=now - dt.timedelta(hours=1))
    alive, left = set(plan["initial"]), set()
    walk = FeedParams(limit=limit, modified_after=WINDOW_DAYS if plan["filtered"] else None)

    def serve(offset):
        params = FeedParams(limit=limit, offset=offset, modified_after=walk.modified_after)
        objects = orjson.loads(b"".join(feed_chunks("pages", params=params, client="importer", now=now)))
        assert len(objects) <= limit
        return [obj["id"] for obj in objects]

    served, offset, second_offset, evicted = [], 0, 0, False
    for step in range(10_000):
        ids = serve(offset)
        if not ids:
            break
        served += ids
        offset += limit
        assert offset <= 500 * limit, "the walk never ended"
        if step >= len(plan["steps"]):
            continue
        change = plan["steps"][step]
        now += TICK
        for kind, where, index in change["leave"]:
            candidates = sorted(alive & set(served) if where == "behind" else alive)
            if not candidates:
                continue
            row = candidates[index % len(candidates)]
            if kind == "delete":
                Page.objects.filter(id=row).delete()
            else:  # its last change falls behind the `modified_after` cutoff at the new `now`
                Page.objects.filter(id=row).update(updated_at=now - dt.timedelta(days=WINDOW_DAYS, seconds=1))
            alive.discard(row)
            left.add(row)
        fresh = set(change["insert"]) - alive - left
        make_pages(sorted(fresh), updated_at=now)
        alive |= fresh
        if change["evict"] == "next":
            cache.delete(pagination.Cursors(feed="pages", walk=walk.walk(), client="importer").key)
        elif change["evict"] == "all":
            cache.clear()
        evicted = evicted or change["evict"] != "none"
        if plan["concurrent"] and step >= plan["second_walk_from"]:
            second_offset = second_offset + limit if serve(second_offset) else 0  # restarts when done

    lived_through = set(plan["initial"]) - left
    assert lived_through <= set(served), "a row that was in the feed for the whole walk was skipped"
    if not evicted and not plan["concurrent"]:
        assert served == sorted(set(served)), "a walk that found all its cursors is exact"
    if not plan["concurrent"]:
        identity = pagination.Cursors(feed="pages", walk=walk.walk(), client="importer")
        assert cache.get(identity.key) is None, "a walk that ended leaves no cursor for the next one"


@pytest.mark.parametrize(
    "stored",
    [
        "not a state",
        {2: "garbage"},
        {2: [20, 1]},
        {2: ["20", 1, 9e99]},
        {2: (20, 1, None)},
        {"2": [20, 1, 9e99]},
    ],
)
def test_a_cursor_record_that_cannot_be_read_is_a_miss(stored):
    walks = cursors()
    cache.set(walks.key, stored, 60)
    assert walks.get(2) is None  # the page seeks cold: never a wrong row, never an error
    walks.advance(served=0, next_offset=2, last_pk=20)
    assert walks.get(2) == 20


# --- a served page keeps its cursor for a retry; a walk by rows served finds its cursor ---------
def test_a_served_page_keeps_its_cursor_until_its_walks_next_page_is_served():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20, start=None, upto=20)
    walks.advance(served=2, next_offset=4, last_pk=40, start=20, upto=40)
    assert walks.get(2) == 20 and walks.find(2).upto == 40  # a retry of 2 starts and ends there
    walks.advance(served=2, next_offset=4, last_pk=40, start=20, upto=40)  # the retry
    walks.advance(served=4, next_offset=6, last_pk=60, start=40, upto=60)  # the next page
    assert walks.get(2) is None and walks.get(4) == 40
    walks.walk_ended(6)
    assert cache.get(walks.key) is None  # nothing left for the next walk


def test_a_page_that_served_fewer_rows_than_the_limit_also_leaves_the_cursor_of_rows_served():
    walks = cursors(limit=5)
    walks.advance(served=0, next_offset=5, last_pk=60, start=None, upto=60, by_rows=(3, 30))
    assert walks.get(5) == 60 and walks.get(3) == 30
    walks.advance(served=3, next_offset=8, last_pk=90, start=30, upto=90)  # the walk went on by rows
    assert walks.get(5) is None  # the other way on is released, once
    walks.walk_ended(8)
    assert cache.get(walks.key) is None
