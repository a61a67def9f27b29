"""What `import_shop` loads is exactly what the models hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gdpr.models import ConsentRecord
from shop.models import Category, Customer, Order, OrderLine, Product
from tests.shop.helpers import T0, import_shop, shop_objects, write_json

pytestmark = pytest.mark.django_db


def full_feed() -> dict:
    """Every type, every field the import knows, in the shape `shop_objects()` reads back."""
    return {
        "categories": [
            {
                "id": 1,
                "name": {"italian": "Cucina", "english": "Kitchen"},
                "url": {"italian": "https://shop.example/it/c/1", "english": "https://shop.example/en/c/1"},
                "subcategories": [2, 3],
                "updated_at": T0,
                "image": "https://shop.example/c/1.jpg",
                "description": {"italian": "Tutto per la cucina", "english": "All for the kitchen"},
            },
            {"id": 2, "name": "Moka", "url": "https://shop.example/c/2", "subcategories": [], "updated_at": T0 + 1},
            {"id": 3, "name": "Tè", "url": "https://shop.example/c/3", "subcategories": [], "updated_at": T0 + 2},
        ],
        "products": [
            {
                "id": 10,
                "name": {"italian": "Moka in acciaio", "english": "Steel moka pot"},
                "description": {"italian": "Sei tazze.", "english": "Six cups."},
                "price": Decimal("24.90"),
                "image": "https://shop.example/img/10.jpg",
                "url": {"italian": "https://shop.example/it/p/10", "english": "https://shop.example/en/p/10"},
                "categories": [1, 2],
                "created_at": T0 - 86_400,
                "updated_at": T0 + 10,
                "list_price": Decimal("1234567.8912"),
                "brand": "Garda",
                "color_names": ["silver", "black"],
                "reviews_avg": 4.5,
                "reviews_amount": 12,
                "on_sale": True,
                "material": {"italian": "acciaio", "english": "steel"},
            },
            {
                "id": 11,
                "name": "Teiera",
                "description": "",
                "price": 30,
                "image": "https://shop.example/img/11.jpg",
                "url": "https://shop.example/p/11",
                "categories": [3, 77],  # 77: a category the shop has not sent; kept as given
                "created_at": T0 - 2 * 86_400,
                "updated_at": T0 + 11,
                "index": False,
            },
        ],
        "pages": [
            {
                "id": 5,
                "type": "blog",
                "url": "https://shop.example/blog/moka",
                "title": {"italian": "Come scegliere una moka", "english": "Choosing a moka pot"},
                "text": {"italian": "Dipende dal fornello.", "english": "It depends on the stove."},
                "updated_at": T0 + 20,
                "image": "https://shop.example/img/blog.jpg",
                "keywords": ["moka", "caffè"],
            },
        ],
        "customers": [
            {
                "id": 7,
                "name": "Giulia Rossi",
                "email": "giulia@example.com",
                "updated_at": T0 + 30,
                "zip": "40121",
                "gender": "female",
                "birth_date": "1990-04-01",
                "is_b2b": False,
                "registered_at": T0 - 10 * 86_400,
                "terms_accepted_at": T0 - 10 * 86_400,
                "consents": [
                    {
                        "purpose": "third_party_sharing",
                        "granted": True,
                        "at": T0 - 9 * 86_400,
                        "source": "account",
                        "evidence": "ticked the box (form v3)",
                    },
                    {
                        "purpose": "marketing",
                        "granted": True,
                        "at": T0 - 8 * 86_400,
                        "source": "checkout",
                        "evidence": "newsletter box",
                    },
                    {"purpose": "marketing", "granted": False, "at": T0 - 86_400, "source": "import", "evidence": ""},
                ],
            },
            {
                "id": 8,
                "name": "Marco Bianchi",
                "email": "marco@example.com",
                "updated_at": T0 + 31,
                "age": 41,
                "is_b2b": True,
            },
        ],
        "orders": [
            {
                "id": 100,
                "products": [
                    {"id": 10, "quantity": 2, "price": Decimal("24.90")},
                    {"id": 999, "quantity": 1, "price": Decimal("0.0001")},  # a deleted product: kept
                ],
                "time": T0 - 5 * 86_400,
                "updated_at": T0 + 40,
                "customer": 7,
                "email": "giulia@example.com",
            },
            {
                "id": 101,
                "products": [{"id": 11, "quantity": 1, "price": 30}],
                "time": T0 - 4 * 86_400,
                "updated_at": T0 + 41,
                "email": "guest@example.com",
                "terms_accepted_at": T0 - 4 * 86_400,
            },
        ],
        "config": {"created": T0, "strict": False},
    }


def test_import_loads_exactly_what_the_file_says(tmp_path):
    feed = full_feed()
    run = import_shop(write_json(tmp_path / "feed.json", feed))
    assert run.code == 0, run.stderr
    expected = {name: objects for name, objects in feed.items() if name != "config"}
    expected["products"][1]["price"] = Decimal(30)
    expected["orders"][1]["products"][0]["price"] = Decimal(30)
    assert shop_objects() == expected


def test_prices_are_exact_decimals_never_floats(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    product = Product.objects.get(pk=10)
    assert product.price == Decimal("24.90") and isinstance(product.price, Decimal)
    assert product.list_price == Decimal("1234567.8912")
    assert OrderLine.objects.get(order_id=100, product_id=999).unit_price == Decimal("0.0001")


def test_times_are_stored_as_the_given_utc_instants(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    product = Product.objects.get(pk=10)
    assert product.created_at == dt.datetime.fromtimestamp(T0 - 86_400, tz=dt.UTC)
    assert product.updated_at == dt.datetime.fromtimestamp(T0 + 10, tz=dt.UTC)
    assert Order.objects.get(pk=101).terms_accepted_at == dt.datetime.fromtimestamp(T0 - 4 * 86_400, tz=dt.UTC)


def test_subcategories_set_the_parent_of_each_child(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    assert dict(Category.objects.values_list("id", "parent_id")) == {1: None, 2: 1, 3: 1}


def test_translations_hold_every_language_and_the_base_field_the_first(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    product = Product.objects.get(pk=10)
    assert product.name == "Moka in acciaio"
    assert product.translations == {
        "italian": {"name": "Moka in acciaio", "description": "Sei tazze.", "url": "https://shop.example/it/p/10"},
        "english": {"name": "Steel moka pot", "description": "Six cups.", "url": "https://shop.example/en/p/10"},
    }
    # A language object in an extra attribute stays one: the feeds write it per language.
    assert product.attributes["material"] == {"italian": "acciaio", "english": "steel"}


def test_the_base_field_takes_the_first_configured_language_present(tmp_path, settings):
    settings.CLERK_LANGUAGES = ["english", "italian"]
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    assert Product.objects.get(pk=10).name == "Steel moka pot"
    assert Category.objects.get(pk=1).url == "https://shop.example/en/c/1"


def test_consents_are_appended_to_the_ledger_as_given(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    records = list(
        ConsentRecord.objects.filter(customer_id=7)
        .order_by("at")
        .values_list("purpose", "granted", "source", "recorded_by")
    )
    assert records == [
        ("third_party_sharing", True, "account", None),
        ("marketing", True, "checkout", None),
        ("marketing", False, "import", None),
    ]
    assert not ConsentRecord.objects.filter(customer_id=8).exists()


def test_every_price_is_kept_exactly_on_every_database(tmp_path):
    feed = full_feed()
    feed["products"][0]["price"] = Decimal("99999999999999.95")  # Clerk's own example
    feed["products"][0]["list_price"] = Decimal("99999999999999.9999")  # the largest price
    run = import_shop(write_json(tmp_path / "feed.json", feed))
    assert run.code == 0, run.stderr
    stored = Product.objects.values_list("price", "list_price").get(pk=10)
    assert stored == (Decimal("99999999999999.95"), Decimal("99999999999999.9999"))
    assert "products 0 created, 0 updated, 2 unchanged" in import_shop(tmp_path / "feed.json").stdout


def test_a_customer_without_optional_fields_keeps_them_empty(tmp_path):
    import_shop(write_json(tmp_path / "feed.json", full_feed()))
    marco = Customer.objects.get(pk=8)
    assert (marco.zip, marco.gender, marco.birth_date, marco.registered_at, marco.terms_accepted_at) == (
        "",
        "",
        None,
        None,
        None,
    )
    assert (marco.age, marco.is_b2b) == (41, True)
