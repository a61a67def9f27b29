"""Clerk's object table is the one source: every reader agrees with it, and follows a change to it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from feeds import rules
from feeds.openapi import build_document
from feeds.registry import FEEDS
from shop import clerk_objects, validation
from shop.clerk_objects import KINDS, OBJECTS, ORDER_LINE, Field, ObjectType

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SCHEMA_NAMES = {
    "products": "Product",
    "categories": "Category",
    "orders": "Order",
    "customers": "Customer",
    "pages": "Page",
}

IMPORTED_PRODUCT = {
    "id": 1,
    "name": "Lightsaber",
    "description": "",
    "price": Decimal("9.5"),
    "image": "https://x/i.jpg",
    "url": "https://x/p",
    "categories": [],
    "created_at": 1_700_000_000,
}
IMPORTED_PAGE = {"id": 1, "type": "blog", "url": "https://x/p", "title": "Post", "text": "Body", "image": "https://x/i"}


def schemas() -> dict:
    return build_document()["components"]["schemas"]


def import_problems(type_name: str, obj: dict) -> list[str]:
    _clean, problems = validation.validate(type_name, obj, validation.Rules(now=NOW))
    return [str(p) for p in problems]


def replace_field(monkeypatch, type_name: str, name: str, **changes) -> None:
    """Change one entry of the table, for this test only (a copy; the table itself is restored)."""
    kind = OBJECTS[type_name]
    fields = {**kind.fields, name: dataclasses.replace(kind.fields[name], **changes)}
    monkeypatch.setitem(OBJECTS, type_name, ObjectType(fields, extras=kind.extras, closed=kind.closed))


# --- the readers agree with the table ------------------------------------------------------------
def test_every_kind_has_a_json_kind_and_an_import_check():
    used = {f.kind for kind in OBJECTS.values() for f in kind.fields.values()} | {f.kind for f in ORDER_LINE.values()}
    assert used <= set(KINDS)
    imported = {f.kind for t in OBJECTS for f in clerk_objects.import_fields(t).values()}
    assert imported | {f.kind for f in ORDER_LINE.values()} <= set(validation._CHECKS)
    assert all(f.required for f in ORDER_LINE.values())  # an order line takes every field
    assert all(KINDS[f.kind] is not None for t in OBJECTS for f in clerk_objects.feed_fields(t).values())


@pytest.mark.parametrize("type_name", OBJECTS)
def test_the_declarations_standard_attributes_are_the_tables(type_name):
    fields = OBJECTS[type_name].fields
    assert FEEDS[type_name].standard_attributes == {n for n, f in fields.items() if f.fed and not f.extra}


@pytest.mark.parametrize("type_name", OBJECTS)
def test_the_openapi_schemas_are_the_tables(type_name):
    schema = schemas()[SCHEMA_NAMES[type_name]]
    fed = clerk_objects.feed_fields(type_name)
    assert schema["required"] == [n for n, f in fed.items() if f.required]
    assert set(schema["properties"]) == set(fed)
    assert (schema["additionalProperties"] is False) == OBJECTS[type_name].closed


@pytest.mark.parametrize("type_name", OBJECTS)
def test_the_feed_rules_translate_what_the_table_marks(type_name):
    fed = clerk_objects.feed_fields(type_name)
    assert set(rules.TEXT_ATTRIBUTES[type_name]) == {n for n, f in fed.items() if f.translatable}


@pytest.mark.parametrize("type_name", OBJECTS)
def test_the_import_reads_every_field_of_the_table(type_name, monkeypatch):
    read: list[str] = []
    original = validation._Reader.field

    def spy(self, name, *args, **kwargs):
        read.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(validation._Reader, "field", spy)
    validation.validate(type_name, {}, validation.Rules(now=NOW))
    # Every column field is read (none dropped in silence); the others are the extra attributes.
    assert sorted(read) == sorted(clerk_objects.import_fields(type_name))


@pytest.mark.parametrize("type_name", [t for t, kind in OBJECTS.items() if not kind.extras])
def test_a_type_without_extras_refuses_what_the_table_does_not_list(type_name):
    problems = import_problems(type_name, {"colour": "red"})
    listed = ", ".join(sorted(clerk_objects.import_fields(type_name)))
    assert f"colour: unknown field: {type_name} carry only {listed}" in problems


def test_the_attribute_name_rule_is_one_object():
    from shop import models

    assert rules.ATTRIBUTE_NAME_RE is models.ATTRIBUTE_NAME_RE is clerk_objects.ATTRIBUTE_NAME_RE


# --- one line changed, every reader follows -------------------------------------------------------
def test_making_a_field_required_changes_every_reader(monkeypatch):
    product = {**IMPORTED_PRODUCT, "price": 9.5}
    assert rules.object_errors("products", product) == []
    assert import_problems("products", IMPORTED_PRODUCT) == []
    assert "brand" not in schemas()["Product"]["required"]

    replace_field(monkeypatch, "products", "brand", required=True)

    assert rules.object_errors("products", product) == ["required field 'brand' is missing"]
    assert import_problems("products", IMPORTED_PRODUCT) == ["brand: missing (required)"]
    assert "brand" in schemas()["Product"]["required"]


def test_making_a_field_translatable_changes_every_reader(monkeypatch, settings):
    settings.CLERK_LANGUAGES = languages = ["italian", "english"]
    texts = {"italian": "Spada", "english": "Sword"}
    imported = {**IMPORTED_PRODUCT, "brand": texts}

    def brand_errors():
        fed = {**IMPORTED_PRODUCT, "price": 1, "brand": texts}
        return [e for e in rules.object_errors("products", fed, languages=languages) if "'brand'" in e]

    assert import_problems("products", imported) != []
    assert brand_errors() != []
    assert "oneOf" not in schemas()["Product"]["properties"]["brand"]

    replace_field(monkeypatch, "products", "brand", translatable=True)

    clean, problems = validation.validate("products", imported, validation.Rules(languages, now=NOW))
    assert problems == []
    assert clean.row["translations"]["english"]["brand"] == "Sword"
    assert brand_errors() == []
    assert "oneOf" in schemas()["Product"]["properties"]["brand"]


def test_taking_a_field_out_of_the_feeds_changes_every_reader(monkeypatch):
    assert "image" in FEEDS["pages"].standard_attributes
    assert rules.object_errors("pages", {**IMPORTED_PAGE, "image": 5}) != []

    replace_field(monkeypatch, "pages", "image", fed=False)

    assert "image" not in FEEDS["pages"].standard_attributes  # an extra could now set it
    assert "image" not in schemas()["Page"]["properties"]
    assert rules.object_errors("pages", {**IMPORTED_PAGE, "image": 5}) == []  # an extra attribute now
    assert import_problems("pages", IMPORTED_PAGE) == []  # the import still reads it


def test_changing_a_kind_changes_every_reader(monkeypatch):
    line = {"id": 1, "quantity": 2, "price": 3}
    order = {"id": 1, "products": [line], "time": 1}
    assert rules.object_errors("orders", {**order, "customer": "x"}) != []

    replace_field(monkeypatch, "orders", "customer", kind="text")

    assert rules.object_errors("orders", {**order, "customer": "x"}) == []
    assert schemas()["Order"]["properties"]["customer"] == {"type": "string"}
    assert import_problems("orders", {**order, "time": 1_700_000_000, "customer": 5}) == [
        "customer: must be a string, not an integer (5)"
    ]
    monkeypatch.setitem(ORDER_LINE, "quantity", Field("number", required=True))
    assert rules.object_errors("orders", {**order, "products": [{**line, "quantity": 1.5}]}) == []
