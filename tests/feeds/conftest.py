"""A small, varied shop for the feed tests, and helpers to fetch and walk feeds over HTTP.

`shop` builds 25-60 objects per type with bulk inserts (fast), covering every optional
attribute, guests, and customers on each side of the GDPR policy. It returns the ids the
construction makes eligible, stated independently of `gdpr.policy`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import pytest
from django.test import Client
from django.utils import timezone

from gdpr.models import ConsentRecord, Purpose, Source
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory

FEED_TYPES = ("products", "categories", "orders", "customers", "pages")


@dataclass
class Shop:
    now: dt.datetime
    ids: dict[str, list[int]] = field(default_factory=dict)  # every row, per type
    eligible: dict[str, list[int]] = field(default_factory=dict)  # what the feeds must show


def build_shop(*, now: dt.datetime | None = None, size: int = 40) -> Shop:
    """Build the shop; ids are sparse (not 1..n) so positions and keys differ."""
    now = now or timezone.now()
    shop = Shop(now=now)
    day = dt.timedelta(days=1)

    categories = []
    for i in range(30):
        cid = 100 + 3 * i
        parent = None if i < 5 else 100 + 3 * (i % 5)
        categories.append(
            Category(
                id=cid,
                parent_id=parent,
                name=f"Category {i}",
                url=f"https://shop.example/c/{cid}",
                image=f"https://shop.example/c/{cid}.jpg" if i % 3 == 0 else "",
                description=f"About category {i}" if i % 4 == 0 else "",
                translations={"italian": {"name": f"Categoria {i}"}} if i % 2 == 0 else {},
                updated_at=now - day * (i % 7),
            )
        )
    Category.objects.bulk_create(categories)
    shop.ids["categories"] = shop.eligible["categories"] = [c.id for c in categories]

    products, memberships = [], []
    for i in range(size):
        pid = 7 + 5 * i
        products.append(
            Product(
                id=pid,
                name=f"Product {i}",
                description="" if i % 9 == 0 else f"Description of product {i}",
                price=Decimal("19.99") + i,
                list_price=Decimal("29.5000") if i % 4 == 0 else None,
                image=f"https://shop.example/img/{pid}.jpg",
                url=f"https://shop.example/p/{pid}",
                brand="Acme" if i % 3 == 0 else "",
                created_at=now - day * (100 + i),
                index=i % 10 != 0,
                attributes={"color_names": ["red", "blue"], "reviews_avg": 4.5, "stock": i} if i % 2 == 0 else {},
                translations={"italian": {"name": f"Prodotto {i}", "description": f"Descrizione {i}"}}
                if i % 3 == 1
                else {},
                updated_at=now - day * (i % 6),
            )
        )
        for category in categories[i % 7 : i % 7 + i % 4]:
            memberships.append(ProductCategory(product_id=pid, category_id=category.id))
    Product.objects.bulk_create(products)
    ProductCategory.objects.bulk_create(memberships)
    shop.ids["products"] = shop.eligible["products"] = [p.id for p in products]

    pages = [
        Page(
            id=11 + 2 * i,
            type="blog" if i % 2 else "cms",
            url=f"https://shop.example/pages/{11 + 2 * i}",
            title=f"Page {i}",
            text=f"Text of page {i}",
            image=f"https://shop.example/pages/{i}.jpg" if i % 3 == 0 else "",
            attributes={"keywords": ["a", "b"]} if i % 2 == 0 else {},
            translations={"english": {"title": f"Page {i} (en)"}} if i % 4 == 0 else {},
            updated_at=now - day * (i % 5),
        )
        for i in range(30)
    ]
    Page.objects.bulk_create(pages)
    shop.ids["pages"] = shop.eligible["pages"] = [p.id for p in pages]

    # Customers: kind by i % 8. 0-4 eligible, 5 objected, 6 erased, 7 never accepted the terms.
    customers, consents, eligible_customers = [], [], []
    for i in range(size):
        cid = 1000 + 7 * i
        kind = i % 8
        registered = now - day * (10 + i)
        customers.append(
            Customer(
                id=cid,
                name=f"Customer {i}",
                email=f"customer{i}@example.com",
                zip=f"{10000 + i}" if i % 2 == 0 else "",
                gender="female" if i % 3 == 0 else "",
                birth_date=dt.date(1980 + i % 20, 1 + i % 12, 1 + i % 28) if i % 4 == 0 else None,
                age=30 + i if i % 4 == 1 else None,
                is_b2b=(i % 2 == 0) if i % 5 == 0 else None,
                registered_at=registered,
                terms_accepted_at=None if kind == 7 else registered,
                erased_at=now - day if kind == 6 else None,
                updated_at=now - day * (i % 6),
            )
        )
        if kind == 5:
            consents.append((cid, Purpose.THIRD_PARTY_SHARING, False))
        if i % 3 == 0:
            consents.append((cid, Purpose.MARKETING, True))
        if kind <= 4:
            eligible_customers.append(cid)
    Customer.objects.bulk_create(customers)
    ConsentRecord.objects.bulk_create(
        ConsentRecord(customer_id=cid, purpose=purpose, granted=granted, at=now - day, source=Source.ACCOUNT)
        for cid, purpose, granted in consents
    )
    shop.ids["customers"] = [c.id for c in customers]
    shop.eligible["customers"] = eligible_customers

    # Orders: one per customer (recent), plus guests with and without terms, plus old ones.
    orders, lines, eligible_orders = [], [], []
    for i, customer in enumerate(customers):
        oid = 5000 + 3 * i
        orders.append(
            Order(
                id=oid,
                customer_id=customer.id,
                email=customer.email if i % 5 else "",
                placed_at=now - day * 3,
                updated_at=now - day * (i % 6),
            )
        )
        if customer.id in eligible_customers:
            eligible_orders.append(oid)
    for j in range(10):
        oid = 9000 + j
        old = j >= 8
        with_terms = j % 2 == 0
        orders.append(
            Order(
                id=oid,
                customer_id=None,
                email=f"guest{j}@example.com" if j % 3 else "",
                placed_at=now - day * (2000 if old else 1 + j),
                terms_accepted_at=now - day if with_terms else None,
                updated_at=now - day * (j % 6),
            )
        )
        if with_terms and not old:
            eligible_orders.append(oid)
    Order.objects.bulk_create(orders)
    for order in orders:
        for k in range(order.id % 3):  # some orders have no lines at all
            lines.append(
                OrderLine(order_id=order.id, product_id=7 + 5 * k, quantity=1 + k, unit_price=Decimal("10.50") + k)
            )
    OrderLine.objects.bulk_create(lines)
    shop.ids["orders"] = [o.id for o in orders]
    shop.eligible["orders"] = sorted(eligible_orders)
    for name in shop.eligible:
        shop.eligible[name] = sorted(shop.eligible[name])
    return shop


@pytest.fixture
def shop(db) -> Shop:
    return build_shop()


# --- HTTP helpers ----------------------------------------------------------------------------
def body_of(response) -> bytes:
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b""))
    return b"".join(response.streaming_content)


def get_json(client: Client, url: str, **extra):
    return orjson.loads(body_of(client.get(url, **extra)))


def get_ndjson(client: Client, url: str, **extra) -> list:
    body = body_of(client.get(url, **extra))
    assert body == b"" or body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


def walk(client: Client, feed: str, *, limit: int, fmt: str = "json", query: str = "") -> list[list]:
    """The importer's walk: offset 0, limit, 2*limit, … until an empty page; returns the pages."""
    pages, offset = [], 0
    while True:
        url = f"/feed/{feed}.{fmt}?limit={limit}&offset={offset}{query}"
        page = get_json(client, url) if fmt == "json" else get_ndjson(client, url)
        pages.append(page)
        if not page:
            return pages
        assert len(page) <= limit
        offset += limit
        assert len(pages) < 10_000, "the walk never ended"
