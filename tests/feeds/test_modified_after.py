"""`modified_after=N`: exactly the objects whose feed-relevant data changed within N days."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from feeds.stream import modified_since
from shop.models import Category, Customer, Order, Page, Product
from tests.feeds.conftest import FEED_TYPES, get_json, walk

pytestmark = pytest.mark.django_db

MODELS = {"products": Product, "categories": Category, "orders": Order, "customers": Customer, "pages": Page}


def changed_within(shop, feed, days):
    """An independent statement: the shop's rows changed 0..6 whole days before `shop.now`, and
    the request comes a moment later, so "within N days" is "changed less than N days before"."""
    cutoff = shop.now - dt.timedelta(days=days)
    changed = set(MODELS[feed].objects.filter(updated_at__gt=cutoff).values_list("pk", flat=True))
    return [pk for pk in shop.eligible[feed] if pk in changed]


@pytest.mark.parametrize("days", [0, 2, 4])
@pytest.mark.parametrize("feed", FEED_TYPES)
def test_modified_after_returns_exactly_the_objects_changed_within_n_days(feed_client, shop, feed, days):
    objects = get_json(feed_client, f"/feed/{feed}.json?modified_after={days}")
    expected = changed_within(shop, feed, days)
    assert [obj["id"] for obj in objects] == expected
    # The same objects as in the whole feed: related lists included (categories, lines...).
    assert objects == [obj for obj in get_json(feed_client, f"/feed/{feed}.json") if obj["id"] in expected]
    if days:
        assert 0 < len(expected) < len(shop.eligible[feed])


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_modified_after_pages_walk_exactly_the_changed_objects(feed_client, shop, feed):
    pages = walk(feed_client, feed, limit=4, query="&modified_after=3")
    assert [obj["id"] for page in pages for obj in page] == changed_within(shop, feed, 3)


def test_modified_after_sees_a_change_made_now(feed_client, shop):
    old = shop.eligible["products"][1]
    assert old not in [p["id"] for p in get_json(feed_client, "/feed/products.json?modified_after=0")]
    Product.objects.filter(pk=old).update(updated_at=timezone.now() + dt.timedelta(seconds=5))
    assert [p["id"] for p in get_json(feed_client, "/feed/products.json?modified_after=0")] == [old]


def test_huge_modified_after_means_every_object(feed_client, shop):
    objects = get_json(feed_client, "/feed/pages.json?modified_after=99999999999")
    assert [p["id"] for p in objects] == shop.eligible["pages"]
    now = timezone.now()
    assert modified_since(now, None) is None
    assert modified_since(now, 10**12) is None
    assert modified_since(now, 3) == now - dt.timedelta(days=3)
