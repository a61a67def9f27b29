"""Prices are exact on every database (`shop.models.ExactPriceField`), and the feeds write them
with every digit (`feeds.encoding.exact_decimal`)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from feeds.encoding import exact_decimal
from shop.models import Order, OrderLine, Product
from tests.factories import ProductFactory
from tests.feeds.conftest import body_of

LARGEST = Decimal("99999999999999.9999")  # numeric(18, 4): 14 digits before the point, 4 after
DEATH_STAR = Decimal("99999999999999.95")  # Clerk's guide


def stored_text(pk: int) -> str:
    """The price column as the database holds it, as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(price AS TEXT) FROM shop_product WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "price", [DEATH_STAR, LARGEST, Decimal("0.0001"), Decimal(0), Decimal("1234567890123.4567"), Decimal("19.99")]
)
def test_a_price_reads_back_exactly(price):
    ProductFactory(id=1, price=price, list_price=price)
    Order.objects.create(id=1, placed_at=timezone.now())
    OrderLine.objects.create(order_id=1, product_id=1, quantity=1, unit_price=price)
    assert Product.objects.values_list("price", "list_price").get(pk=1) == (price, price)
    assert Product.objects.get(pk=1).price == price
    assert OrderLine.objects.get().unit_price == price


@pytest.mark.django_db
def test_sqlite_holds_a_fixed_width_text_and_postgresql_a_numeric():
    ProductFactory(id=1, price=Decimal("1234.5"))
    if connection.vendor == "sqlite":
        assert stored_text(1) == "00000000001234.5000"
    else:
        assert stored_text(1) == "1234.5000"


PRICES = [Decimal(p) for p in ("100", "9.99", "10", "99999999999999.95", "0", "99999999999999.9", "10.0001", "2")]


@pytest.mark.django_db
def test_ordering_and_comparisons_on_price_are_numeric():
    for pk, price in enumerate(PRICES, 1):
        ProductFactory(id=pk, price=price)
    assert list(Product.objects.order_by("price").values_list("price", flat=True)) == sorted(PRICES)
    assert list(Product.objects.order_by("-price").values_list("price", flat=True)) == sorted(PRICES, reverse=True)
    above_ten = Product.objects.filter(price__gt=Decimal(10)).values_list("price", flat=True)
    assert sorted(above_ten) == [p for p in sorted(PRICES) if p > 10]
    assert Product.objects.filter(price=Decimal("9.9900")).count() == 1
    assert Product.objects.filter(price__in=[2, Decimal("99999999999999.95")]).count() == 2
    assert Product.objects.filter(price__range=(Decimal("9.99"), 100)).count() == 4


@pytest.mark.django_db
@pytest.mark.parametrize("price", [Decimal(100000000000000), Decimal("1E+30")])
def test_a_price_too_large_is_refused_by_every_database(price):
    with pytest.raises(DataError), transaction.atomic():
        ProductFactory(id=1, price=price)


@pytest.mark.django_db
def test_a_negative_price_fails_validation():
    product = ProductFactory.build(id=1, price=Decimal(-1))
    with pytest.raises(ValidationError) as caught:
        product.full_clean()
    assert "price" in caught.value.message_dict


# --- the feeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("200.0000"), b"200.0"),
        (Decimal("0.0000"), b"0.0"),
        (Decimal(0), b"0.0"),
        (Decimal("19.9900"), b"19.99"),
        (Decimal("99999999999999.9500"), b"99999999999999.95"),
        (LARGEST, b"99999999999999.9999"),
        (Decimal("1E+2"), b"100.0"),
        (Decimal("1E-7"), b"0.0000001"),
    ],
)
def test_a_decimal_is_written_as_a_json_number_of_exactly_its_digits(value, text):
    assert orjson.dumps({"price": value}, default=exact_decimal) == b'{"price":' + text + b"}"
    assert json.loads(text, parse_float=Decimal) == value


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), 1.5j, object()])
def test_what_is_not_a_finite_decimal_is_refused(value):
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps({"price": value}, default=exact_decimal)


def test_up_to_fifteen_digits_the_bytes_are_what_a_float_gave():
    for value in ("19.99", "0.1", "123456789.0123", "10", "99995.95", "0.0001"):
        exact = orjson.dumps(Decimal(value), default=exact_decimal)
        assert exact == orjson.dumps(float(value))


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_the_feeds_write_every_digit_of_a_price(feed_client, fmt):
    ProductFactory(id=1, price=DEATH_STAR, list_price=LARGEST)
    order = Order.objects.create(
        id=1, placed_at=timezone.now() - dt.timedelta(days=1), terms_accepted_at=timezone.now()
    )
    OrderLine.objects.create(order=order, product_id=1, quantity=1, unit_price=DEATH_STAR)
    products = body_of(feed_client.get(f"/feed/products.{fmt}"))
    assert b'"price":99999999999999.95,' in products
    assert b'"list_price":99999999999999.9999' in products
    orders = body_of(feed_client.get(f"/feed/orders.{fmt}"))
    assert b'"price":99999999999999.95}' in orders
    single = body_of(feed_client.get("/feed/all.json"))
    assert json.loads(single, parse_float=Decimal)["products"][0]["price"] == DEATH_STAR


# --- the migration -----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_stored_price():
    executor = MigrationExecutor(connection)
    target = ("shop", "0005_exact_prices")
    before = executor.loader.get_migration(*target).dependencies
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([d for d in before if d[0] == "shop"])
    try:
        old = MigrationExecutor(connection).loader.project_state([d for d in before if d[0] == "shop"]).apps
        prices = {1: Decimal("19.99"), 2: Decimal(200), 3: Decimal("0.1"), 4: Decimal("12345678901.2345")}
        for pk, price in prices.items():
            old.get_model("shop", "Product").objects.create(
                id=pk,
                name="p",
                description="",
                price=price,
                list_price=price if pk % 2 else None,
                image="https://s/i",
                url="https://s/p",
                created_at=timezone.now(),
            )
        old.get_model("shop", "Order").objects.create(id=1, placed_at=timezone.now())
        old.get_model("shop", "OrderLine").objects.create(
            order_id=1, product_id=1, quantity=1, unit_price=Decimal("0.1")
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    stored = dict(Product.objects.values_list("id", "price"))
    assert stored == prices
    assert dict(Product.objects.values_list("id", "list_price")) == {1: prices[1], 2: None, 3: prices[3], 4: None}
    assert OrderLine.objects.get().unit_price == Decimal("0.1")
    assert list(Product.objects.order_by("price").values_list("id", flat=True)) == [3, 1, 2, 4]
    if connection.vendor == "sqlite":
        assert stored_text(2) == "00000000000200.0000"
