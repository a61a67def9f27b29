"""The single feed: every type in one object, and `config.created` from the data, not the clock."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.db.models import F
from django.utils import timezone

from feeds.params import FeedParams
from feeds.registry import data_changed_at
from feeds.stream import feed_chunks
from shop.models import Category, Customer, Order, Page, Product
from tests.feeds.conftest import FEED_TYPES, body_of, get_json

pytestmark = pytest.mark.django_db


def test_single_feed_has_every_section_then_config(feed_client, shop):
    body = body_of(feed_client.get("/feed/all.json"))
    feed = orjson.loads(body)
    assert list(feed) == [*FEED_TYPES, "config"]
    assert feed["config"] == {"created": data_changed_at(), "strict": False}
    for name in FEED_TYPES:
        assert feed[name] == get_json(feed_client, f"/feed/{name}.json")


def test_single_feed_of_an_empty_shop(feed_client):
    assert get_json(feed_client, "/feed/all.json") == {
        "products": [],
        "categories": [],
        "orders": [],
        "customers": [],
        "pages": [],
        "config": {"created": 0, "strict": False},
    }


def age_every_row(days=1):
    for model in (Product, Category, Order, Customer, Page):
        model.objects.update(updated_at=F("updated_at") - dt.timedelta(days=days))


@pytest.mark.parametrize("model", [Product, Category, Order, Customer, Page])
def test_config_created_is_the_newest_change_of_any_type(feed_client, shop, model):
    age_every_row()
    newest = timezone.now() - dt.timedelta(hours=1)  # later than every other row, earlier than now
    model.objects.filter(pk=model.objects.order_by("pk").values("pk")[:1]).update(updated_at=newest)
    assert get_json(feed_client, "/feed/all.json")["config"]["created"] == int(newest.timestamp())


def test_config_created_counts_rows_that_left_the_feed(feed_client, shop):
    # A withdrawal moves the customer's updated_at and removes them: the feed changed.
    objected = shop.ids["customers"][5]
    assert objected not in shop.eligible["customers"]
    age_every_row()
    moment = timezone.now() - dt.timedelta(minutes=5)
    Customer.objects.filter(pk=objected).update(updated_at=moment)
    feed = get_json(feed_client, "/feed/all.json")
    assert objected not in [c["id"] for c in feed["customers"]]
    assert feed["config"]["created"] == int(moment.timestamp())


def test_config_created_is_stable_while_the_data_does_not_change(feed_client, shop):
    first = get_json(feed_client, "/feed/all.json")["config"]["created"]
    second = get_json(feed_client, "/feed/all.json")["config"]["created"]
    assert first == second == int(shop.now.timestamp())  # the newest row, not the clock


def test_single_feed_applies_modified_after_and_language_to_every_section(feed_client, shop, settings):
    settings.CLERK_LANGUAGES = ["italian", "english"]
    feed = get_json(feed_client, "/feed/all.json?modified_after=2&language=italian")
    for name in FEED_TYPES:
        assert feed[name] == get_json(feed_client, f"/feed/{name}.json?modified_after=2&language=italian")
    assert isinstance(feed["products"][0]["name"], str)


def test_single_feed_rows_are_counted_over_all_sections(shop):
    chunks = feed_chunks("all", params=FeedParams())
    feed = orjson.loads(b"".join(chunks))
    assert chunks.rows == sum(len(feed[name]) for name in FEED_TYPES)
