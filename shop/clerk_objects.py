"""Clerk's object rules, one table: every field of every object type, one line each.

`OBJECTS[type_name]` is an `ObjectType`: its `fields` (name -> `Field(kind, required,
translatable, fed, extra, import_optional)`) and whether it keeps or refuses other attributes.
`ORDER_LINE` holds the fields of an order's product line, `KINDS` each kind's JSON kind as
Clerk sees it, `ATTRIBUTE_NAME_RE` the attribute names Clerk keeps. `feed_fields`,
`standard_attributes` and `import_fields` are the views the readers take, read at call time.
Readers: `shop.validation` (imports), `feeds.rules` (feed objects), `feeds.base` (the
declarations' standard attributes) and `feeds.openapi` (schemas). See docs/import.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ATTRIBUTE_NAME_RE",
    "FEED_TYPES",
    "KINDS",
    "OBJECTS",
    "ORDER_LINE",
    "Field",
    "ObjectType",
    "feed_fields",
    "import_fields",
    "standard_attributes",
]

# Clerk ignores attributes whose names are not plain ASCII letters, digits and underscores.
ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")

# Each kind (what an import checks) -> its JSON kind in a feed object (what `feeds.rules` checks):
# "str", "id" / "int" / "time" (integers), "number", "bool", "ids" (an array of ids),
# "order_lines"; None for what only an import carries.
KINDS: dict[str, str | None] = {
    "text": "str",
    "url": "str",
    "email": "str",
    "id": "id",
    "ids": "ids",
    "int": "int",
    "age": "int",
    "quantity": "int",
    "number": "number",
    "price": "number",
    "time": "time",
    "bool": "bool",
    "order_lines": "order_lines",
    "date": None,
    "consents": None,
}


@dataclass(frozen=True, slots=True)
class Field:
    kind: str  # a key of KINDS
    required: bool = False  # every feed object has it, and so must every imported one
    translatable: bool = False  # one text per language in a multi-language feed or import
    fed: bool = True  # False: the shop's own, read by an import and never sent to Clerk
    extra: bool = False  # kept among the extra attributes (Clerk fixes its type, the shop has no column)
    import_optional: bool = False  # required in a feed, optional in an import (the feed derives it)


@dataclass(frozen=True, slots=True)
class ObjectType:
    fields: Mapping[str, Field]
    extras: bool  # keeps other attributes (import: in `attributes`); else an import refuses them
    closed: bool = False  # Clerk refuses any attribute beyond `fields` in a feed


_UPDATED_AT = {"updated_at": Field("time", fed=False)}  # the shop's own change time, every type

OBJECTS: dict[str, ObjectType] = {
    "products": ObjectType(
        {
            "id": Field("id", required=True),
            "name": Field("text", required=True, translatable=True),
            "description": Field("text", required=True, translatable=True),
            "price": Field("price", required=True),
            "list_price": Field("price"),
            "image": Field("url", required=True, translatable=True),
            "url": Field("url", required=True, translatable=True),
            "categories": Field("ids", required=True),
            "created_at": Field("time", required=True),
            "brand": Field("text"),
            "index": Field("bool"),
            "reviews_amount": Field("int", extra=True),
            "reviews_avg": Field("number", extra=True),
            **_UPDATED_AT,
        },
        extras=True,
    ),
    "categories": ObjectType(
        {
            "id": Field("id", required=True),
            "name": Field("text", required=True, translatable=True),
            "url": Field("url", required=True, translatable=True),
            "subcategories": Field("ids", required=True),
            "image": Field("url", translatable=True),
            "description": Field("text", translatable=True),
            **_UPDATED_AT,
        },
        extras=False,
    ),
    "orders": ObjectType(
        {
            "id": Field("id", required=True),
            "products": Field("order_lines", required=True),
            "time": Field("time", required=True),
            "customer": Field("id"),
            "email": Field("email"),
            "terms_accepted_at": Field("time", fed=False),
            **_UPDATED_AT,
        },
        extras=False,
        closed=True,
    ),
    "customers": ObjectType(
        {
            "id": Field("id", required=True),
            "name": Field("text", required=True),
            "email": Field("email", required=True),
            "subscribed": Field("bool", required=True, import_optional=True),
            "zip": Field("text"),
            "gender": Field("text"),
            "age": Field("age"),
            "is_b2b": Field("bool"),
            "birth_date": Field("date", fed=False),
            "registered_at": Field("time", fed=False),
            "terms_accepted_at": Field("time", fed=False),
            "consents": Field("consents", fed=False),
            **_UPDATED_AT,
        },
        extras=False,
    ),
    "pages": ObjectType(
        {
            "id": Field("id", required=True),
            "type": Field("text", required=True),
            "url": Field("url", required=True, translatable=True),
            "title": Field("text", required=True, translatable=True),
            "text": Field("text", required=True, translatable=True),
            "image": Field("url", translatable=True),
            **_UPDATED_AT,
        },
        extras=True,
    ),
}

# An order's product line: every field required, nothing else allowed.
ORDER_LINE: dict[str, Field] = {
    "id": Field("id", required=True),
    "quantity": Field("quantity", required=True),
    "price": Field("price", required=True),
}

FEED_TYPES = tuple(OBJECTS)


def feed_fields(type_name: str) -> dict[str, Field]:
    """The fields a feed object of `type_name` may carry with a type Clerk fixes, in table order."""
    return {name: f for name, f in OBJECTS[type_name].fields.items() if f.fed}


def standard_attributes(type_name: str) -> frozenset[str]:
    """The fields a feed declaration writes itself: an extra attribute never sets one."""
    return frozenset(name for name, f in OBJECTS[type_name].fields.items() if f.fed and not f.extra)


def import_fields(type_name: str) -> dict[str, Field]:
    """The fields an import reads into the shop's columns (the rest are extra attributes)."""
    return {name: f for name, f in OBJECTS[type_name].fields.items() if not f.extra}
