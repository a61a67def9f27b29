"""Running `manage.py import_shop` in tests, and reading the shop back in the import's shape."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.core.management import CommandError, call_command

from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr.importing import LedgerForImport
from gdpr.models import ConsentRecord
from shop.importing import ImportResult, import_objects
from shop.models import Category, Customer, Order, Page, Product, ProductCategory

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z: a fixed, past unix time for test data


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def rejections(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("rejected ")]


def import_shop(source: Path | str | bytes, *args: str) -> Run:
    """Run the command on a path, or on bytes given as standard input; never raises."""
    out, err = io.StringIO(), io.StringIO()
    options: dict[str, Any] = {"stdout": out, "stderr": err}
    if isinstance(source, bytes):
        options["stdin"] = io.BytesIO(source)
        source = "-"
    try:
        call_command("import_shop", str(source), *args, **options)
        code = 0
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        code = exc.returncode
    return Run(code, out.getvalue(), err.getvalue())


def import_cleanly(sections: dict[str, list[Any]], *, batch_size: int = 2000) -> ImportResult:
    """Import objects in memory through the service (with the consent ledger); nothing may be
    rejected or warned about."""

    class Reporter:
        def __init__(self) -> None:
            self.problems: list[Any] = []

        def rejected(self, *args: Any) -> None:
            self.problems.append(args)

        def warning(self, message: str) -> None:
            self.problems.append(message)

    reporter = Reporter()
    result = import_objects(sections, reporter=reporter, ledger=LedgerForImport(), batch_size=batch_size)
    assert not reporter.problems, reporter.problems
    return result


def page(feed: str, *, limit: int, offset: int, client: str = "importer", now=None, modified_after=None) -> list[int]:
    """The ids of one page of a feed, served at `now` (all objects, or those changed within
    `modified_after` days)."""
    params = FeedParams(limit=limit, offset=offset, modified_after=modified_after)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


_MARK = "@@decimal@@"


def dumps(value: Any) -> str:
    """JSON with Decimals written as exact numbers (never through float)."""

    def mark(obj: Any) -> str:
        if isinstance(obj, Decimal):
            return f"{_MARK}{obj}{_MARK}"
        raise TypeError(f"cannot encode {type(obj).__name__}")

    text = json.dumps(value, default=mark, ensure_ascii=False)
    return text.replace(f'"{_MARK}', "").replace(f'{_MARK}"', "")


def write_json(path: Path, value: Any) -> Path:
    path.write_text(dumps(value), encoding="utf-8")
    return path


def write_ndjson(path: Path, objects: list[Any]) -> Path:
    path.write_text("".join(dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


# --- the shop, read back in the import's shape --------------------------------------------------
def _unix(value) -> int:
    return int(value.timestamp())


def _texts(obj, field: str, base: str) -> Any:
    """The base text, or a language object when the row has translations of `field`."""
    texts = {lang: fields[field] for lang, fields in obj.translations.items() if field in fields}
    return texts or base


def product_object(p: Product) -> dict:
    o = {
        "id": p.id,
        "name": _texts(p, "name", p.name),
        "description": _texts(p, "description", p.description),
        "price": p.price,
        "image": _texts(p, "image", p.image),
        "url": _texts(p, "url", p.url),
        "categories": sorted(ProductCategory.objects.filter(product=p).values_list("category_id", flat=True)),
        "created_at": _unix(p.created_at),
        "updated_at": _unix(p.updated_at),
        **p.attributes,
    }
    if p.list_price is not None:
        o["list_price"] = p.list_price
    if p.brand:
        o["brand"] = p.brand
    if not p.index:
        o["index"] = False
    return o


def category_object(c: Category) -> dict:
    o = {
        "id": c.id,
        "name": _texts(c, "name", c.name),
        "url": _texts(c, "url", c.url),
        "subcategories": sorted(c.children.values_list("id", flat=True)),
        "updated_at": _unix(c.updated_at),
    }
    if c.image:
        o["image"] = _texts(c, "image", c.image)
    if c.description:
        o["description"] = _texts(c, "description", c.description)
    return o


def page_object(p: Page) -> dict:
    o = {
        "id": p.id,
        "type": p.type,
        "url": _texts(p, "url", p.url),
        "title": _texts(p, "title", p.title),
        "text": _texts(p, "text", p.text),
        "updated_at": _unix(p.updated_at),
        **p.attributes,
    }
    if p.image:
        o["image"] = _texts(p, "image", p.image)
    return o


def customer_object(c: Customer) -> dict:
    o = {"id": c.id, "name": c.name, "email": c.email, "updated_at": _unix(c.updated_at)}
    for name in ("zip", "gender"):
        if getattr(c, name):
            o[name] = getattr(c, name)
    if c.age is not None:
        o["age"] = c.age
    if c.birth_date is not None:
        o["birth_date"] = c.birth_date.isoformat()
    if c.is_b2b is not None:
        o["is_b2b"] = c.is_b2b
    for name in ("registered_at", "terms_accepted_at"):
        if getattr(c, name) is not None:
            o[name] = _unix(getattr(c, name))
    consents = [
        {"purpose": r.purpose, "granted": r.granted, "at": _unix(r.at), "source": r.source, "evidence": r.evidence}
        for r in ConsentRecord.objects.filter(customer=c).order_by("at", "id")
    ]
    if consents:
        o["consents"] = consents
    return o


def order_object(order: Order) -> dict:
    o = {
        "id": order.id,
        "products": [
            {"id": line.product_id, "quantity": line.quantity, "price": line.unit_price}
            for line in order.lines.order_by("id")
        ],
        "time": _unix(order.placed_at),
        "updated_at": _unix(order.updated_at),
    }
    if order.customer_id is not None:
        o["customer"] = order.customer_id
    if order.email:
        o["email"] = order.email
    if order.terms_accepted_at is not None:
        o["terms_accepted_at"] = _unix(order.terms_accepted_at)
    return o


def shop_objects() -> dict[str, list[dict]]:
    """Everything the shop holds, in the import's shape, by id."""
    return {
        "categories": [category_object(c) for c in Category.objects.order_by("id")],
        "products": [product_object(p) for p in Product.objects.order_by("id")],
        "pages": [page_object(p) for p in Page.objects.order_by("id")],
        "customers": [customer_object(c) for c in Customer.objects.order_by("id")],
        "orders": [order_object(o) for o in Order.objects.order_by("id")],
    }


def updated_times() -> dict[tuple[str, int], Any]:
    """(type, id) -> updated_at, for every object."""
    times = {}
    for name, model in (
        ("categories", Category),
        ("products", Product),
        ("pages", Page),
        ("customers", Customer),
        ("orders", Order),
    ):
        for pk, updated_at in model.objects.values_list("pk", "updated_at"):
            times[(name, pk)] = updated_at
    return times
