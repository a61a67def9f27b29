"""Pagination: importer walks are exact at every limit, deep pages cost what the first does.

Cold pages (no cursor) are exact on a catalogue with no recent deletion, and start their margin
early otherwise (see `feeds.pagination`).
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feeds import pagination
from feeds.params import FeedParams
from feeds.registry import FEEDS
from feeds.stream import feed_chunks
from shop.models import Page, Product
from tests.factories import CategoryFactory, PageFactory, ProductFactory
from tests.feeds.conftest import FEED_TYPES, get_json, get_ndjson, walk

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
@pytest.mark.parametrize("feed", FEED_TYPES)
def test_walk_yields_every_eligible_object_once_equal_to_whole_feed(feed_client, shop, feed, limit):
    whole = get_json(feed_client, f"/feed/{feed}.json")
    pages = walk(feed_client, feed, limit=limit)

    walked = [obj for page in pages for obj in page]
    assert pages[-1] == []
    assert all(len(page) == limit for page in pages[:-2])
    assert walked == whole
    assert [obj["id"] for obj in walked] == shop.eligible[feed]


@pytest.mark.parametrize("limit", [7, 1000])
@pytest.mark.parametrize("feed", FEED_TYPES)
def test_ndjson_walk_equals_json_walk(feed_client, shop, feed, limit):
    json_pages = walk(feed_client, feed, limit=limit)
    ndjson_pages = walk(feed_client, feed, limit=limit, fmt="ndjson")
    assert ndjson_pages == json_pages
    assert get_ndjson(feed_client, f"/feed/{feed}.ndjson") == get_json(feed_client, f"/feed/{feed}.json")


def test_page_past_the_end_is_an_empty_array(feed_client, shop):
    assert get_json(feed_client, "/feed/products.json?limit=10&offset=100000") == []
    assert get_ndjson(feed_client, "/feed/products.ndjson?limit=10&offset=100000") == []


def test_offset_without_limit_is_a_page_of_the_default_limit(feed_client, shop, settings):
    settings.CLERK_FEED_DEFAULT_LIMIT = 5
    first = get_json(feed_client, "/feed/products.json?offset=0")
    second = get_json(feed_client, "/feed/products.json?offset=5")  # continues by the cursor
    assert [p["id"] for p in first + second] == shop.eligible["products"][0:10]


def test_walk_stays_exact_when_rows_are_deleted_and_added_mid_walk(feed_client, shop):
    ids = shop.eligible["products"]
    first = get_json(feed_client, "/feed/products.json?limit=10&offset=0")
    # Between pages: delete rows already served and rows still ahead, add one ahead and one behind.
    Product.objects.filter(id__in=[ids[0], ids[3], ids[15], ids[25]]).delete()
    Product.objects.create(
        id=ids[-1] + 1000, name="New", price=1, image="https://i", url="https://u", created_at=shop.now
    )
    Product.objects.create(id=1, name="Behind", price=1, image="https://i", url="https://u", created_at=shop.now)
    rest = [obj for page in walk_from(feed_client, "products", limit=10, offset=10) for obj in page]

    served = [o["id"] for o in first + rest]
    survivors = [i for i in ids if i not in (ids[0], ids[3], ids[15], ids[25])]
    # Every row that existed for the whole walk exactly once: nothing skipped, nothing repeated.
    assert sorted(set(served) & set(survivors)) == survivors
    assert len(served) == len(set(served))
    assert ids[-1] + 1000 in served  # added ahead of the walk: seen


def walk_from(client, feed, *, limit, offset):
    pages = []
    while True:
        page = get_json(client, f"/feed/{feed}.json?limit={limit}&offset={offset}")
        pages.append(page)
        if not page:
            return pages
        offset += limit


def test_cold_deep_page_of_a_static_catalogue_starts_exactly_and_the_walk_continues_by_cursor(feed_client, shop):
    whole = get_json(feed_client, "/feed/products.json")
    cache.clear()  # no cursor: a cold start, or an evicted cache
    # No product deleted lately: no row can have left the feed behind the walk, no margin.
    assert get_json(feed_client, "/feed/products.json?limit=7&offset=14") == whole[14:21]
    # ...and the walk continues from there by cursor.
    assert get_json(feed_client, "/feed/products.json?limit=7&offset=21") == whole[21:28]


def test_cold_deep_page_after_a_recent_deletion_starts_its_margin_early(feed_client, shop):
    Product.objects.filter(id=shop.eligible["products"][-1]).delete()  # queued in the outbox
    whole = get_json(feed_client, "/feed/products.json")
    cache.clear()
    start = 14 - pagination.cold_seek_margin(14)
    assert start == 12  # ⌈14/10⌉ = 2 rows early: a margin for rows that left the feed meanwhile
    assert get_json(feed_client, "/feed/products.json?limit=7&offset=14") == whole[start : start + 7]
    assert get_json(feed_client, "/feed/products.json?limit=7&offset=21") == whole[start + 7 : start + 14]


@pytest.mark.parametrize("feed", ["customers", "orders"])
def test_cold_deep_customer_and_order_pages_are_exact_on_static_data(feed_client, shop, feed):
    """Their positions are kept in `feeds.listing` (tests/feeds/test_listed_pages.py)."""
    whole = get_json(feed_client, f"/feed/{feed}.json")
    cache.clear()
    assert get_json(feed_client, f"/feed/{feed}.json?limit=7&offset=14") == whole[14:21]


def test_cold_catalogue_page_with_modified_after_keeps_its_margin(feed_client, shop):
    """Rows leave a `modified_after` page as the cutoff moves with time."""
    recent = get_json(feed_client, "/feed/pages.json?modified_after=3")
    cache.clear()
    start = 10 - pagination.cold_seek_margin(10)
    assert get_json(feed_client, "/feed/pages.json?limit=5&offset=10&modified_after=3") == recent[start : start + 5]


def test_walks_with_different_limits_or_filters_never_share_cursors(feed_client, shop):
    get_json(feed_client, "/feed/products.json?limit=5&offset=0")
    get_json(feed_client, "/feed/products.json?limit=5&offset=5")  # stores a cursor for offset 10
    # A product imported behind the walk, changed long ago: an exact cold seek at offset 10 now
    # starts one row earlier than the cursor (whole[10]), so a shared cursor would show.
    Product.objects.create(
        id=1,
        name="Behind",
        price=1,
        image="https://i",
        url="https://u",
        created_at=shop.now,
        updated_at=shop.now - dt.timedelta(days=30),
    )
    whole = get_json(feed_client, "/feed/products.json")
    assert get_json(feed_client, "/feed/products.json?limit=10&offset=10") == whole[10:20]
    assert whole[10]["id"] == shop.eligible["products"][9]
    # `modified_after` pages seek with margin (one row early at offset 10), by their own key.
    recent = get_json(feed_client, "/feed/products.json?modified_after=3")
    start = 10 - pagination.cold_seek_margin(10)
    assert recent[start]["id"] != shop.eligible["products"][9]  # so a shared cursor would show
    assert get_json(feed_client, "/feed/products.json?limit=5&offset=10&modified_after=3") == recent[start : start + 5]


def test_cursors_of_one_client_are_not_used_for_another(shop):
    params = FeedParams(limit=5, offset=0)
    b"".join(feed_chunks("products", params=params, client="importer-a"))
    cursors_a = pagination.Cursors(feed="products", walk=params.walk(), client="importer-a")
    cursors_b = pagination.Cursors(feed="products", walk=params.walk(), client="importer-b")
    assert cursors_a.get(5) == shop.eligible["products"][4]
    assert cursors_b.get(5) is None


def test_a_broken_cache_costs_speed_not_correctness(shop, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(pagination.cache, "get", broken)
    monkeypatch.setattr(pagination.cache, "set", broken)
    page = orjson.loads(b"".join(feed_chunks("products", params=FeedParams(limit=5, offset=10))))
    # No cursor can be read: a cold seek, exact on a catalogue with no recent deletion.
    assert [p["id"] for p in page] == shop.eligible["products"][10:15]


def test_pages_larger_than_a_batch_are_read_in_several_batches(shop, monkeypatch):
    monkeypatch.setattr(pagination, "BATCH_SIZE", 4)
    page = orjson.loads(b"".join(feed_chunks("products", params=FeedParams(limit=10, offset=3))))
    assert [p["id"] for p in page] == shop.eligible["products"][3:13]  # a cold seek, exact
    whole = orjson.loads(b"".join(feed_chunks("products", params=FeedParams())))
    assert [p["id"] for p in whole] == shop.eligible["products"]


# --- a constant number of queries per page ----------------------------------------------------
# Per page: the rows, plus one query per related list (memberships, children, order lines),
# plus, on a personal feed, its bounds in the listing (`feeds.listing`) and the recording of the
# ids handed out (`gdpr.holdings`); the first page to serve a row lists it (one more query).
QUERIES_PER_PAGE = {"products": 2, "categories": 2, "orders": 4, "customers": 3, "pages": 1}
# A cold page adds its index-only seek; a catalogue's first seeks exactly, then asks the outbox
# whether a row was deleted lately (if so, it seeks again with its margin).
COLD_SEEK_QUERIES = {"products": 2, "categories": 2, "orders": 1, "customers": 1, "pages": 2}
CATALOGUE = [feed for feed, cls in FEEDS.items() if cls.rows_leave_only_by_deletion]


def count_queries(name: str, params: FeedParams, *, client: str = "count") -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        objects = orjson.loads(b"".join(feed_chunks(name, params=params, client=client)))
    return len(queries), objects


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_queries_per_page_are_constant_at_any_depth(shop, feed):
    if FEEDS[feed].personal:
        count_queries(feed, FeedParams(limit=3, offset=0))  # lists the rows it serves
    first, objects = count_queries(feed, FeedParams(limit=3, offset=0))
    assert objects
    assert first == QUERIES_PER_PAGE[feed]

    # Deep page of the same walk: the cursor of the previous page, no seek.
    count_queries(feed, FeedParams(limit=3, offset=3))
    if FEEDS[feed].personal:
        count_queries(feed, FeedParams(limit=3, offset=3), client="lists")
        count_queries(feed, FeedParams(limit=3, offset=6), client="lists")
        count_queries(feed, FeedParams(limit=1000, offset=0), client="lists")
    deep, objects = count_queries(feed, FeedParams(limit=3, offset=6))
    assert objects
    assert deep == QUERIES_PER_PAGE[feed]

    # Cold deep page: the seek (and the outbox question), whatever the offset.
    cache.clear()
    cold, objects = count_queries(feed, FeedParams(limit=3, offset=len(shop.eligible[feed]) - 3))
    assert len(objects) == 3
    assert cold == QUERIES_PER_PAGE[feed] + COLD_SEEK_QUERIES[feed]


@pytest.mark.parametrize("feed", CATALOGUE)
def test_a_cold_catalogue_page_after_a_recent_deletion_seeks_again_with_its_margin(shop, feed):
    FEEDS[feed].model.objects.filter(id=shop.eligible[feed][0]).delete()  # a row the walk served
    cache.clear()
    cold, objects = count_queries(feed, FeedParams(limit=3, offset=10))
    # Position 10 now holds eligible[11]: an exact seek would skip eligible[10]; the margin
    # (⌈10/10⌉ = 1 row) starts at it.
    assert pagination.cold_seek_margin(10) == 1
    assert [o["id"] for o in objects] == shop.eligible[feed][10:13]
    assert cold == QUERIES_PER_PAGE[feed] + 3


def test_catalogue_feeds_are_products_categories_and_pages():
    assert sorted(CATALOGUE) == ["categories", "pages", "products"]


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_queries_per_page_do_not_grow_with_the_page_size(shop, feed):
    if FEEDS[feed].personal:
        count_queries(feed, FeedParams(limit=1000), client="lists")  # lists the rows it serves
    small, _ = count_queries(feed, FeedParams(limit=2))
    large, objects = count_queries(feed, FeedParams(limit=500))
    assert len(objects) == len(shop.eligible[feed])
    assert small == large == QUERIES_PER_PAGE[feed]


# --- cold walks: exact on a static catalogue ---------------------------------------------------
def cold_walk(feed: str, *, limit: int) -> list[list[int]]:
    """The importer's walk with the cursors cleared before every page: each page is a cold seek."""
    pages, offset = [], 0
    while True:
        cache.clear()
        params = FeedParams(limit=limit, offset=offset)
        pages.append([o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client="cold")))])
        if not pages[-1]:
            return pages
        offset += limit
        assert len(pages) <= 200, "the walk never ended"


CATALOGUE_FACTORIES = {"products": ProductFactory, "categories": CategoryFactory, "pages": PageFactory}


@pytest.mark.parametrize("limit", [1, 7, 100])
@pytest.mark.parametrize("feed", CATALOGUE)
def test_cold_walk_of_a_static_catalogue_is_exact(shop, feed, limit):
    # At least two and a half pages, so that every cold page's margin would show.
    top = max(shop.eligible[feed])
    extra = [top + k for k in range(1, 5 * limit // 2 - len(shop.eligible[feed]) + 1)]
    for pk in extra:
        CATALOGUE_FACTORIES[feed](id=pk)
    pages = cold_walk(feed, limit=limit)
    served = [pk for page in pages for pk in page]
    assert served == sorted(shop.eligible[feed] + extra)  # no overlap, no skip
    assert pages[-1] == [] and all(len(page) == limit for page in pages[:-2])
    assert len(pages) == -(-len(served) // limit) + 1  # ends at the first page past the end


@pytest.mark.parametrize("feed", ["customers", "orders"])
def test_cold_walks_of_customers_and_orders_are_exact(shop, feed):
    served = [pk for page in cold_walk(feed, limit=7) for pk in page]
    assert served == shop.eligible[feed]


def test_cold_seek_reads_only_primary_keys(shop):
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        b"".join(feed_chunks("products", params=FeedParams(limit=3, offset=20)))
    seek = queries.captured_queries[0]["sql"].lower()
    assert "offset" in seek
    assert "description" not in seek and "name" not in seek.split("from")[0]
    # On PostgreSQL the whole catalogue table's rank index answers; SQLite counts the keys.
    assert ("feeds_rankbucket" in seek) is (connection.vendor == "postgresql")


def test_cold_seek_in_a_personal_feed_reads_its_listing_not_the_shop_tables(shop):
    b"".join(feed_chunks("customers", params=FeedParams(limit=100, offset=0), client="lists"))
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        b"".join(feed_chunks("customers", params=FeedParams(limit=3, offset=20)))
    seek = queries.captured_queries[0]["sql"].lower()
    assert "feeds_feedlisting" in seek and "shop_customer" not in seek
    # On PostgreSQL the listing's own counts answer (`feeds_feedlisting:customers`), never a shop table's.
    assert ("feeds_rankbucket" in seek) is (connection.vendor == "postgresql")
    assert not any("'shop_customer'" in q["sql"].lower() for q in queries.captured_queries)


# --- the property: exact walks whatever happens during them -----------------------------------
@st.composite
def walks(draw):
    initial = draw(st.sets(st.integers(1, 200), max_size=50))
    limit = draw(st.integers(1, 12))
    steps = draw(
        st.lists(
            st.tuples(
                st.lists(st.integers(0, 10_000), max_size=3),  # which existing rows to delete
                st.lists(st.integers(1, 200), max_size=3),  # new primary keys to insert
            ),
            max_size=25,
        )
    )
    return sorted(initial), limit, steps


def make_pages(ids):
    Page.objects.bulk_create(
        Page(id=i, type="cms", url=f"https://shop.example/{i}", title=f"t{i}", text="x") for i in ids
    )


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(walk_plan=walks())
def test_property_walk_serves_every_row_that_lived_through_it_exactly_once(db, walk_plan):
    initial, limit, steps = walk_plan
    Page.objects.all().delete()
    cache.clear()
    make_pages(initial)
    existing, ever_deleted = set(initial), set()

    served, offset, step = [], 0, 0
    while True:
        page = orjson.loads(b"".join(feed_chunks("pages", params=FeedParams(limit=limit, offset=offset), client="p")))
        if not page:
            break
        assert len(page) <= limit
        served += [obj["id"] for obj in page]
        offset += limit
        if step < len(steps):  # change the data between two pages
            deletes, inserts = steps[step]
            step += 1
            alive = sorted(existing)
            doomed = {alive[i % len(alive)] for i in deletes} if alive else set()
            Page.objects.filter(id__in=doomed).delete()
            existing -= doomed
            ever_deleted |= doomed
            fresh = set(inserts) - existing
            make_pages(sorted(fresh))
            existing |= fresh
        assert offset <= 400 * limit, "the walk never ended"

    lived_through = set(initial) - ever_deleted
    assert len(served) == len(set(served)), "a row was served twice"
    assert lived_through <= set(served), "a row that existed for the whole walk was skipped"
    assert served == sorted(served), "pages out of primary-key order"
    if not steps:
        assert served == initial
