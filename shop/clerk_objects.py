"""Clerk's object rules, one table: a row per field of each object type (`_TABLE` below).

A row gives the field's kind (which check, see `KINDS`) and its flags: required, translatable,
import-only, extra, import-optional. `OBJECTS[type_name]` is the parsed `ObjectType` (`fields`:
name -> `Field`; `extras`; `closed`), `ORDER_LINE` an order line's fields, `ATTRIBUTE_NAME_RE`
the attribute names Clerk keeps. `feed_fields`, `standard_attributes` and `import_fields` are
the readers' views, computed at call time. Readers: `shop.validation` (imports), `feeds.rules`,
`feeds.base` (the declarations) and `feeds.openapi`. The reasoning: docs/import.md.
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


# One row a field: type, field, kind (a key of KINDS), then its flags: required, translatable,
# import-only (the shop's own: never fed), extra (kept among the extra attributes) and
# import-optional (required in a feed, optional in an import). `order_line`: an order's lines.
_TABLE = """
products    id                 id           required
products    name               text         required  translatable
products    description        text         required  translatable
products    price              price        required
products    list_price         price
products    image              url          required  translatable
products    url                url          required  translatable
products    categories         ids          required
products    created_at         time         required
products    brand              text
products    index              bool
products    reviews_amount     int          extra
products    reviews_avg        number       extra
products    updated_at         time         import-only
categories  id                 id           required
categories  name               text         required  translatable
categories  url                url          required  translatable
categories  subcategories      ids          required
categories  image              url          translatable
categories  description        text         translatable
categories  updated_at         time         import-only
orders      id                 id           required
orders      products           order_lines  required
orders      time               time         required
orders      customer           id
orders      email              email
orders      terms_accepted_at  time         import-only
orders      updated_at         time         import-only
order_line  id                 id           required
order_line  quantity           quantity     required
order_line  price              price        required
customers   id                 id           required
customers   name               text         required
customers   email              email        required
customers   subscribed         bool         required  import-optional
customers   zip                text
customers   gender             text
customers   age                age
customers   is_b2b             bool
customers   birth_date         date         import-only
customers   registered_at      time         import-only
customers   terms_accepted_at  time         import-only
customers   consents           consents     import-only
customers   updated_at         time         import-only
pages       id                 id           required
pages       type               text         required
pages       url                url          required  translatable
pages       title              text         required  translatable
pages       text               text         required  translatable
pages       image              url          translatable
pages       updated_at         time         import-only
"""
# Types that keep other attributes (an import stores them in `attributes`); the rest refuse them.
_KEEP_EXTRAS = frozenset({"products", "pages"})
# Types on which Clerk refuses any attribute beyond the table's.
_CLOSED = frozenset({"orders"})


def _parse(table: str) -> dict[str, dict[str, Field]]:
    flags = {"required", "translatable", "import-only", "extra", "import-optional"}
    parsed: dict[str, dict[str, Field]] = {}
    for row in table.strip().splitlines():
        type_name, name, kind, *marks = row.split()
        if kind not in KINDS or not flags.issuperset(marks):
            raise ValueError(f"shop.clerk_objects: bad row {row!r}")
        parsed.setdefault(type_name, {})[name] = Field(
            kind,
            required="required" in marks,
            translatable="translatable" in marks,
            fed="import-only" not in marks,
            extra="extra" in marks,
            import_optional="import-optional" in marks,
        )
    return parsed


_FIELDS = _parse(_TABLE)

ORDER_LINE: dict[str, Field] = _FIELDS.pop("order_line")
OBJECTS: dict[str, ObjectType] = {
    type_name: ObjectType(fields, extras=type_name in _KEEP_EXTRAS, closed=type_name in _CLOSED)
    for type_name, fields in _FIELDS.items()
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
