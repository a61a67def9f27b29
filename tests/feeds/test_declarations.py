"""Feed objects: Clerk's rules for every object of every feed, and the shape of each type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import F, Q
from django.utils import timezone

from feeds.base import AmongKeys, keys_lookup
from feeds.declarations import DECLARATIONS
from feeds.registry import FEEDS
from feeds.rules import TEXT_ATTRIBUTES, feed_errors
from shop.models import Category
from tests.factories import (
    CategoryFactory,
    ConsentRecordFactory,
    CustomerFactory,
    OrderFactory,
    PageFactory,
    ProductFactory,
)
from tests.feeds.conftest import FEED_TYPES, get_json, walk

pytestmark = pytest.mark.django_db

LANGUAGES = ["italian", "english"]


def by_id(objects):
    return {obj["id"]: obj for obj in objects}


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_every_object_of_every_feed_obeys_clerks_rules(feed_client, shop, feed):
    objects = get_json(feed_client, f"/feed/{feed}.json")
    assert objects
    assert feed_errors(feed, objects) == []


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_every_object_obeys_clerks_rules_in_a_multi_language_feed(feed_client, shop, settings, feed):
    settings.CLERK_LANGUAGES = LANGUAGES
    objects = get_json(feed_client, f"/feed/{feed}.json")
    assert objects
    assert feed_errors(feed, objects, languages=LANGUAGES) == []
    for obj in objects:
        for name in TEXT_ATTRIBUTES[feed]:
            if name in obj:
                assert set(obj[name]) == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("feed", FEED_TYPES)
def test_every_object_obeys_clerks_rules_in_one_language(feed_client, shop, settings, feed, language):
    settings.CLERK_LANGUAGES = LANGUAGES
    objects = get_json(feed_client, f"/feed/{feed}.json?language={language}")
    assert feed_errors(feed, objects) == []


def test_the_single_feed_obeys_clerks_rules_in_every_section(feed_client, shop, settings):
    settings.CLERK_LANGUAGES = LANGUAGES
    feed = get_json(feed_client, "/feed/all.json")
    for name in FEED_TYPES:
        assert feed_errors(name, feed[name], languages=LANGUAGES) == []


def test_registry_maps_each_type_to_its_declaration():
    assert tuple(FEEDS) == FEED_TYPES
    assert set(FEEDS.values()) == set(DECLARATIONS)
    for name, feed in FEEDS.items():
        assert feed.name == name
        assert feed.model._meta.pk.attname in feed.columns
        assert set(TEXT_ATTRIBUTES[name]) <= feed.standard_attributes


def test_related_rows_of_a_batch_are_read_by_key_range_when_dense_else_by_their_keys():
    assert keys_lookup("product_id", [10, 11, 13, 14]) == Q(product_id__gte=10, product_id__lte=14)
    [among] = keys_lookup("product_id", [10, 100]).children
    assert isinstance(among, AmongKeys) and among.rhs == [10, 100]
    [among] = keys_lookup("order_id", []).children
    assert isinstance(among, AmongKeys) and among.rhs == []


@pytest.mark.parametrize("keys", [[], [1], [2, 3], [1, 3, 5, 10**12], list(range(1, 2000, 3))])
def test_among_keys_selects_exactly_those_keys_with_one_parameter(keys):
    categories = [CategoryFactory(id=pk) for pk in (1, 2, 3, 4, 5, 7)]
    products = Category.objects.filter(AmongKeys(F("id"), keys))
    assert sorted(products.values_list("id", flat=True)) == sorted(c.id for c in categories if c.id in keys)
    sql, params = products.query.sql_with_params()
    assert len(params) <= 1  # however many keys


def test_sparse_and_filtered_batches_get_exactly_their_own_related_lists(feed_client, shop):
    whole = by_id(get_json(feed_client, "/feed/products.json"))
    # Pages of 3 products over ids 5 apart (ranges), and one of 40 (IN), agree with the whole feed.
    for page in walk(feed_client, "products", limit=3) + walk(feed_client, "products", limit=40):
        for obj in page:
            assert obj == whole[obj["id"]]


# --- products ---------------------------------------------------------------------------------
def test_product_object_has_required_fields_numbers_and_unix_times(feed_client):
    created = timezone.now() - dt.timedelta(days=3)
    a, b = CategoryFactory(), CategoryFactory()
    product = ProductFactory(price=Decimal("99995.9500"), created_at=created, categories=[b, a])
    [obj] = get_json(feed_client, "/feed/products.json")
    assert obj == {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price": 99995.95,
        "image": product.image,
        "url": product.url,
        "categories": sorted([a.id, b.id]),
        "created_at": int(created.timestamp()),
    }


def test_product_optional_attributes_appear_only_when_set(feed_client):
    plain = ProductFactory(description="", brand="", list_price=None)
    rich = ProductFactory(brand="Acme", list_price=Decimal("30"), index=False)
    objects = by_id(get_json(feed_client, "/feed/products.json"))
    assert objects[plain.id]["description"] == ""  # required: present even when empty
    assert objects[plain.id]["categories"] == []
    assert {"brand", "list_price", "index"}.isdisjoint(objects[plain.id])
    assert objects[rich.id]["brand"] == "Acme"
    assert objects[rich.id]["list_price"] == 30.0
    assert objects[rich.id]["index"] is False


def test_product_extra_attributes_are_merged_but_never_override_standard_fields(feed_client):
    product = ProductFactory(
        brand="",
        attributes={
            "color_names": ["Green", "Red"],
            "reviews_avg": 4.8,
            "stock": 3,
            "name": "Hijacked",
            "price": 0,
            "index": False,
            "brand": "Extra brand",
        },
    )
    [obj] = get_json(feed_client, "/feed/products.json")
    assert obj["color_names"] == ["Green", "Red"]
    assert obj["reviews_avg"] == 4.8
    assert obj["stock"] == 3
    assert obj["name"] == product.name
    assert obj["price"] == 19.99
    assert "index" not in obj and "brand" not in obj


def test_extra_attributes_clerk_cannot_take_are_dropped_not_sent(feed_client):
    # Written behind the model's validators' back, as a bulk import or raw SQL could.
    product = ProductFactory()
    type(product).objects.filter(pk=product.pk).update(
        attributes={
            "ok": "yes",
            "bad-name": 1,
            "trailing\n": 2,
            "gone": None,
            "nested": {"a": 1},
            "list": [1, None, "x"],
        }
    )
    [obj] = get_json(feed_client, "/feed/products.json")
    assert obj["ok"] == "yes"
    assert obj["list"] == [1, "x"]
    assert {"bad-name", "trailing\n", "gone", "nested"}.isdisjoint(obj)
    assert feed_errors("products", [obj]) == []


# --- categories -------------------------------------------------------------------------------
def test_category_lists_its_subcategories_and_omits_empty_optional_texts(feed_client):
    root = CategoryFactory(image="https://shop.example/c.jpg", description="All the things")
    child_b = CategoryFactory(parent=root)
    child_a = CategoryFactory(parent=root)
    objects = by_id(get_json(feed_client, "/feed/categories.json"))
    assert objects[root.id] == {
        "id": root.id,
        "name": root.name,
        "url": root.url,
        "subcategories": sorted([child_a.id, child_b.id]),
        "image": "https://shop.example/c.jpg",
        "description": "All the things",
    }
    assert objects[child_a.id] == {"id": child_a.id, "name": child_a.name, "url": child_a.url, "subcategories": []}


# --- orders -----------------------------------------------------------------------------------
def test_order_carries_only_clerks_order_attributes(feed_client):
    placed = timezone.now() - dt.timedelta(days=2)
    order = OrderFactory(placed_at=placed, lines=[(7, 2, Decimal("120.0000")), (3, 1, Decimal("200"))])
    [obj] = get_json(feed_client, "/feed/orders.json")
    lines = sorted(obj.pop("products"), key=lambda line: line["id"])
    assert obj == {"id": order.id, "time": int(placed.timestamp()), "customer": order.customer_id, "email": order.email}
    assert lines == [{"id": 3, "quantity": 1, "price": 200.0}, {"id": 7, "quantity": 2, "price": 120.0}]


def test_guest_order_has_no_customer_and_empty_email_is_omitted(feed_client):
    guest = OrderFactory(customer=None, email="", terms_accepted_at=timezone.now())
    [obj] = get_json(feed_client, "/feed/orders.json")
    assert obj["id"] == guest.id
    assert set(obj) == {"id", "products", "time"}


# --- customers --------------------------------------------------------------------------------
def test_customer_subscribed_only_with_an_active_marketing_grant(feed_client):
    never = CustomerFactory()
    granted = CustomerFactory()
    withdrawn = CustomerFactory()
    ConsentRecordFactory(customer=granted, purpose="marketing", granted=True)
    ConsentRecordFactory(
        customer=withdrawn, purpose="marketing", granted=True, at=timezone.now() - dt.timedelta(days=2)
    )
    ConsentRecordFactory(
        customer=withdrawn, purpose="marketing", granted=False, at=timezone.now() - dt.timedelta(days=1)
    )
    objects = by_id(get_json(feed_client, "/feed/customers.json"))
    assert objects[never.id]["subscribed"] is False
    assert objects[granted.id]["subscribed"] is True
    assert objects[withdrawn.id]["subscribed"] is False


def test_customer_optional_attributes_and_age_from_birth_date(feed_client):
    today = timezone.now().date()
    born = (
        today.replace(year=today.year - 40)
        if not (today.month == 2 and today.day == 29)
        else today.replace(year=today.year - 40, day=28)
    )
    full = CustomerFactory(zip="20121", gender="female", birth_date=born, age=99, is_b2b=False)
    aged = CustomerFactory(age=33)
    bare = CustomerFactory(name="", zip="", gender="")
    objects = by_id(get_json(feed_client, "/feed/customers.json"))
    assert objects[full.id] == {
        "id": full.id,
        "name": full.name,
        "email": full.email,
        "subscribed": False,
        "zip": "20121",
        "gender": "female",
        "age": 40,
        "is_b2b": False,
    }
    assert objects[aged.id]["age"] == 33
    assert objects[bare.id] == {"id": bare.id, "name": "", "email": bare.email, "subscribed": False}


# --- pages ------------------------------------------------------------------------------------
def test_page_object_with_optional_image_and_extras(feed_client):
    page = PageFactory(image="https://shop.example/p.jpg", attributes={"keywords": ["blog", "new"], "title": "no"})
    bare = PageFactory()
    objects = by_id(get_json(feed_client, "/feed/pages.json"))
    assert objects[page.id] == {
        "id": page.id,
        "type": "cms",
        "url": page.url,
        "title": page.title,
        "text": page.text,
        "image": "https://shop.example/p.jpg",
        "keywords": ["blog", "new"],
    }
    assert "image" not in objects[bare.id]


# --- languages --------------------------------------------------------------------------------
def test_multi_language_texts_have_every_language_and_fall_back_to_the_base_text(feed_client, settings):
    settings.CLERK_LANGUAGES = LANGUAGES
    product = ProductFactory(
        name="Lightsaber",
        description="Antique",
        translations={"italian": {"name": "Spada laser", "description": ""}, "english": {"url": "https://en/p"}},
        attributes={"material": {"italian": "legno", "english": "wood"}, "partial": {"italian": "solo"}},
    )
    [obj] = get_json(feed_client, "/feed/products.json")
    assert obj["name"] == {"italian": "Spada laser", "english": "Lightsaber"}
    assert obj["description"] == {"italian": "Antique", "english": "Antique"}
    assert obj["url"] == {"italian": product.url, "english": "https://en/p"}
    assert obj["image"] == {"italian": product.image, "english": product.image}
    assert obj["material"] == {"italian": "legno", "english": "wood"}
    assert "partial" not in obj  # a text that is not in every language cannot be sent


def test_language_parameter_gives_plain_texts_in_that_language(feed_client, settings):
    settings.CLERK_LANGUAGES = LANGUAGES
    ProductFactory(
        name="Lightsaber",
        translations={"italian": {"name": "Spada laser"}},
        attributes={"material": {"italian": "legno", "english": "wood"}},
    )
    [italian] = get_json(feed_client, "/feed/products.json?language=italian")
    [english] = get_json(feed_client, "/feed/products.json?language=english")
    assert (italian["name"], italian["material"]) == ("Spada laser", "legno")
    assert (english["name"], english["material"]) == ("Lightsaber", "wood")


def test_optional_category_text_in_no_language_is_omitted(feed_client, settings):
    settings.CLERK_LANGUAGES = LANGUAGES
    only_italian = CategoryFactory(description="", translations={"italian": {"description": "Descrizione"}})
    none = CategoryFactory(description="")
    objects = by_id(get_json(feed_client, "/feed/categories.json"))
    assert objects[only_italian.id]["description"] == {"italian": "Descrizione", "english": ""}
    assert "description" not in objects[none.id]
