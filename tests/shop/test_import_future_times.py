"""No time from the future: a time more than a day ahead of the import's clock rejects its row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from gdpr.importing import LedgerForImport
from shop import importing
from shop.importing import import_objects
from shop.models import Category, Customer, Order, Page, Product
from tests.shop.helpers import T0, import_shop, write_ndjson

pytestmark = pytest.mark.django_db

NOW = dt.datetime.fromtimestamp(T0, tz=dt.UTC)  # the run's clock, injected
DAY = 86_400
LIMIT = T0 + DAY  # the latest time accepted


class Collected:
    def __init__(self) -> None:
        self.rejected_rows: list[tuple[str, str, int | None, list[str]]] = []

    def rejected(self, type_name, where, object_id, problems) -> None:
        self.rejected_rows.append((type_name, where, object_id, [str(p) for p in problems]))

    def warning(self, message: str) -> None:
        raise AssertionError(message)


def run(sections: dict[str, list[Any]], *, now: dt.datetime = NOW) -> Collected:
    reporter = Collected()
    import_objects(sections, reporter=reporter, ledger=LedgerForImport(), now=now)
    return reporter


def category(**fields) -> dict:
    return {"id": 1, "name": "Moka", "url": "https://shop.example/c/1", "subcategories": [], **fields}


def product(**fields) -> dict:
    return {
        "id": 1,
        "name": "Moka",
        "description": "",
        "price": Decimal("24.90"),
        "image": "https://shop.example/i.jpg",
        "url": "https://shop.example/p/1",
        "categories": [],
        "created_at": T0 - DAY,
        **fields,
    }


def page(**fields) -> dict:
    return {"id": 1, "type": "blog", "url": "https://shop.example/b/1", "title": "Moka", "text": "", **fields}


def customer(**fields) -> dict:
    return {"id": 1, "name": "Giulia Rossi", "email": "giulia@example.com", **fields}


def order(**fields) -> dict:
    return {"id": 1, "products": [{"id": 1, "quantity": 1, "price": Decimal("24.90")}], "time": T0 - DAY, **fields}


MAKERS = {"categories": category, "products": product, "pages": page, "customers": customer, "orders": order}
MODELS = {"categories": Category, "products": Product, "pages": Page, "customers": Customer, "orders": Order}

# Every time of an object the import stores (a consent's `at` has the ledger's own rule).
FIELDS = [
    ("products", "created_at"),
    ("customers", "registered_at"),
    ("customers", "terms_accepted_at"),
    ("orders", "time"),
    ("orders", "terms_accepted_at"),
    *[(type_name, "updated_at") for type_name in MAKERS],
]


@pytest.mark.parametrize(("type_name", "name"), FIELDS)
def test_a_time_more_than_a_day_ahead_rejects_its_row_naming_the_field(type_name, name):
    reporter = run({type_name: [MAKERS[type_name](**{name: LIMIT + 1})]})
    assert reporter.rejected_rows == [
        (type_name, "index 0", 1, [f"{name}: {LIMIT + 1} is more than a day in the future"])
    ]
    assert not MODELS[type_name].objects.exists()


@pytest.mark.parametrize(("type_name", "name"), FIELDS)
def test_a_day_ahead_is_still_accepted(type_name, name):
    reporter = run({type_name: [MAKERS[type_name](**{name: LIMIT - 1}), MAKERS[type_name](id=2, **{name: LIMIT})]})
    assert reporter.rejected_rows == []
    assert MODELS[type_name].objects.count() == 2


def test_the_bound_follows_the_injected_clock_not_the_wall_clock():
    # Judged at T0 - 30 days, a time of T0 (long past by the real clock) lies in the future.
    reporter = run({"products": [product(created_at=T0)]}, now=NOW - dt.timedelta(days=30))
    assert reporter.rejected_rows[0][3] == [f"created_at: {T0} is more than a day in the future"]


def test_the_whole_run_is_judged_against_one_clock_read(monkeypatch):
    class Clock:
        """A clock that moves a day ahead at every read."""

        reads = 0

        @classmethod
        def now(cls) -> dt.datetime:
            cls.reads += 1
            return NOW + dt.timedelta(days=cls.reads - 1)

    monkeypatch.setattr(importing, "timezone", Clock)
    reporter = Collected()
    products = [product(id=i, created_at=LIMIT + 1) for i in range(1, 4)]
    import_objects({"products": products}, reporter=reporter, ledger=LedgerForImport(), batch_size=1)
    assert Clock.reads == 1
    assert [row[2] for row in reporter.rejected_rows] == [1, 2, 3]


def test_a_consent_keeps_the_ledgers_own_rule():
    # Five minutes of clock skew, not a day: the ledger's rule (gdpr.ledger.MAX_CLOCK_SKEW).
    ahead = int(dt.datetime.now(dt.UTC).timestamp()) + 3600
    consent = {"purpose": "marketing", "granted": True, "at": ahead, "source": "import"}
    reporter = run({"customers": [customer(consents=[consent])]}, now=dt.datetime.now(dt.UTC))
    assert reporter.rejected_rows[0][3] == ["consents[0].at: lies in the future"]


def test_the_command_names_the_line_and_the_field(tmp_path):
    lines = [order(id=1), order(id=2), order(id=3, time=4_102_444_800)]  # 2100-01-01
    result = import_shop(write_ndjson(tmp_path / "o.ndjson", lines), "--type", "orders")
    assert result.code == 1
    assert result.rejections == ["rejected orders at line 3 (id 3): time: 4102444800 is more than a day in the future"]
    assert sorted(Order.objects.values_list("pk", flat=True)) == [1, 2]
