"""Clerk's object rules: the one validator of what a feed object may look like.

DESIGN.md, "Objects", from Clerk's Data Feeds guide:

* every type has required fields, each with its JSON type;
* no `null` anywhere: an absent value is an omitted key;
* ids are integers (one id type per feed), times are integer unix seconds, prices are numbers;
* attribute names match `^[A-Za-z0-9_]+$` (Clerk silently drops any other attribute);
* orders carry only id, products[{id, quantity, price}], time, customer and email;
* values are Clerk's types only: int, float, str, bool, arrays of them;
* with languages configured, every text attribute is an object keyed by every language.

`object_errors()` checks one object, `feed_errors()` a whole feed (adding duplicate ids). The
feeds' own tests run every object through them, and so does `manage.py clerk_check`; the feed
declarations read `TEXT_ATTRIBUTES` from here so that what is translated and what is checked
cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = [
    "ATTRIBUTE_NAME_RE",
    "FEED_TYPES",
    "ORDER_KEYS",
    "OPTIONAL_FIELDS",
    "ORDER_LINE_KEYS",
    "REQUIRED_FIELDS",
    "TEXT_ATTRIBUTES",
    "feed_errors",
    "is_language_object",
    "object_errors",
]

ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")

FEED_TYPES = ("products", "categories", "orders", "customers", "pages")

# Kinds of value a field must hold (the values of REQUIRED_FIELDS and OPTIONAL_FIELDS, a public
# vocabulary: the OpenAPI description maps each to a JSON Schema). "text" is a string, or a
# language object when the feed is multi-language; "id", "int" and "time" are integers (bools
# are not integers here); "ids" an array of ids; "order_lines" an order's products.
_TEXT, _STR, _ID, _TIME, _NUMBER, _INT, _BOOL, _IDS = ("text", "str", "id", "time", "number", "int", "bool", "ids")

REQUIRED_FIELDS: dict[str, dict[str, str]] = {
    "products": {
        "id": _ID,
        "name": _TEXT,
        "description": _TEXT,
        "price": _NUMBER,
        "image": _TEXT,
        "url": _TEXT,
        "categories": _IDS,
        "created_at": _TIME,
    },
    "categories": {"id": _ID, "name": _TEXT, "url": _TEXT, "subcategories": _IDS},
    "orders": {"id": _ID, "products": "order_lines", "time": _TIME},
    "customers": {"id": _ID, "name": _STR, "email": _STR, "subscribed": _BOOL},
    "pages": {"id": _ID, "type": _STR, "url": _TEXT, "title": _TEXT, "text": _TEXT},
}

# Optional attributes whose type Clerk's guide fixes.
OPTIONAL_FIELDS: dict[str, dict[str, str]] = {
    "products": {
        "list_price": _NUMBER,
        "brand": _STR,
        "index": _BOOL,
        "reviews_amount": _INT,
        "reviews_avg": _NUMBER,
    },
    "categories": {"image": _TEXT, "description": _TEXT},
    "orders": {"customer": _ID, "email": _STR},
    "customers": {"zip": _STR, "gender": _STR, "age": _INT, "is_b2b": _BOOL},
    "pages": {"image": _TEXT},
}

# The former private name (read by feeds/openapi.py); use OPTIONAL_FIELDS.

# Text attributes that carry one text per language in a multi-language feed.
TEXT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    type_name: tuple(
        name
        for fields in (REQUIRED_FIELDS[type_name], OPTIONAL_FIELDS[type_name])
        for name, kind in fields.items()
        if kind == _TEXT
    )
    for type_name in FEED_TYPES
}

# Orders are closed: Clerk refuses any attribute beyond these.
ORDER_KEYS = frozenset(REQUIRED_FIELDS["orders"]) | frozenset(OPTIONAL_FIELDS["orders"])
ORDER_LINE_KEYS = frozenset({"id", "quantity", "price"})

# Beyond 64 bits orjson refuses to encode an int and Clerk could not store it.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def object_errors(type_name: str, obj: Any, *, languages: Sequence[str] = ()) -> list[str]:
    """Every way `obj` breaks Clerk's rules for `type_name`, as sentences; [] when it obeys.

    `languages` are the configured language names when the feed is multi-language (every text
    attribute must then be an object with exactly those keys), empty for a plain feed (or a
    feed rendered in one language).
    """
    if type_name not in REQUIRED_FIELDS:
        raise ValueError(f"Unknown feed type {type_name!r}; expected one of {FEED_TYPES}.")
    if not isinstance(obj, Mapping):
        return [f"a {type_name} object must be a JSON object, not {_json_type(obj)}"]
    languages = tuple(languages)
    errors: list[str] = []
    errors += _null_errors(obj, path="")
    for name in obj:
        if not isinstance(name, str) or not ATTRIBUTE_NAME_RE.fullmatch(name):
            errors.append(f"attribute name {name!r} is not made of A-Z, a-z, 0-9 and _")
    required = REQUIRED_FIELDS[type_name]
    optional = OPTIONAL_FIELDS[type_name]
    for name in required:
        if name not in obj:
            errors.append(f"required field {name!r} is missing")
    if type_name == "orders":
        for name in obj:
            if name not in ORDER_KEYS:
                errors.append(f"orders may not carry attribute {name!r}")
    for name, value in obj.items():
        if value is None:
            continue  # already reported as a null
        kind = required.get(name) or optional.get(name)
        if kind is not None:
            errors += _kind_errors(name, value, kind, languages)
        elif type_name != "orders":
            errors += _extra_errors(name, value, languages)
    return errors


def feed_errors(type_name: str, objects: Iterable[Any], *, languages: Sequence[str] = ()) -> list[str]:
    """`object_errors` for every object of one feed, prefixed with its id, plus duplicate ids."""
    errors: list[str] = []
    seen: set[Any] = set()
    for index, obj in enumerate(objects):
        label = f"{type_name}[{index}]"
        if isinstance(obj, Mapping) and "id" in obj:
            label = f"{type_name} id {obj['id']!r}"
            key = (type(obj["id"]).__name__, obj["id"]) if _hashable(obj["id"]) else None
            if key is not None:
                if key in seen:
                    errors.append(f"{label}: the id appears more than once in the feed")
                seen.add(key)
        errors += [f"{label}: {e}" for e in object_errors(type_name, obj, languages=languages)]
    return errors


def is_language_object(value: Any, languages: Sequence[str]) -> bool:
    """A text given per language: exactly the configured languages, each a string."""
    return (
        bool(languages)
        and isinstance(value, Mapping)
        and set(value) == set(languages)
        and all(isinstance(text, str) for text in value.values())
    )


# --- checks -----------------------------------------------------------------------------------
def _kind_errors(name: str, value: Any, kind: str, languages: tuple[str, ...]) -> list[str]:
    if kind == _TEXT:
        if languages:
            if is_language_object(value, languages):
                return []
            return [f"{name!r} must be an object with a text for each of {list(languages)}, not {_describe(value)}"]
        return [] if isinstance(value, str) else [f"{name!r} must be a string, not {_json_type(value)}"]
    if kind == _STR:
        return [] if isinstance(value, str) else [f"{name!r} must be a string, not {_json_type(value)}"]
    if kind in (_ID, _INT):
        return [] if _is_int(value) else [f"{name!r} must be an integer, not {_describe(value)}"]
    if kind == _TIME:
        if _is_int(value):
            return []
        return [f"{name!r} must be an integer unix time in seconds, not {_describe(value)}"]
    if kind == _NUMBER:
        return [] if _is_number(value) else [f"{name!r} must be a number, not {_describe(value)}"]
    if kind == _BOOL:
        return [] if isinstance(value, bool) else [f"{name!r} must be true or false, not {_describe(value)}"]
    if kind == _IDS:
        if not isinstance(value, list):
            return [f"{name!r} must be an array of integer ids, not {_json_type(value)}"]
        return [
            f"{name}[{i}] must be an integer id, not {_describe(item)}"
            for i, item in enumerate(value)
            if item is not None and not _is_int(item)
        ]
    if kind == "order_lines":
        return _order_line_errors(name, value)
    raise AssertionError(f"unknown field kind {kind!r}")  # a bug in the tables above


def _order_line_errors(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"{name!r} must be an array of {{id, quantity, price}}, not {_json_type(value)}"]
    errors: list[str] = []
    for i, line in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(line, Mapping):
            errors.append(f"{where} must be an object {{id, quantity, price}}, not {_json_type(line)}")
            continue
        for key in ORDER_LINE_KEYS - set(line):
            errors.append(f"{where} lacks {key!r}")
        for key in set(line) - ORDER_LINE_KEYS:
            errors.append(f"{where} may not carry {key!r}")
        if "id" in line and line["id"] is not None and not _is_int(line["id"]):
            errors.append(f"{where}.id must be an integer id, not {_describe(line['id'])}")
        if "quantity" in line and line["quantity"] is not None and not _is_int(line["quantity"]):
            errors.append(f"{where}.quantity must be an integer, not {_describe(line['quantity'])}")
        if "price" in line and line["price"] is not None and not _is_number(line["price"]):
            errors.append(f"{where}.price must be a number, not {_describe(line['price'])}")
    return errors


def _extra_errors(name: str, value: Any, languages: tuple[str, ...]) -> list[str]:
    """An extra attribute: one of Clerk's types (int, float, str, bool, array), or a text per language."""
    if _is_scalar(value):
        return []
    if isinstance(value, list):
        return [
            f"{name}[{i}] must be a string, number or boolean, not {_describe(item)}"
            for i, item in enumerate(value)
            if item is not None and not _is_scalar(item)
        ]
    if is_language_object(value, languages):
        return []
    if isinstance(value, Mapping) and languages:
        return [f"{name!r} is an object but not a text for each of {list(languages)}: {_describe(value)}"]
    return [f"{name!r} must be a string, number, boolean or array, not {_describe(value)}"]


def _null_errors(value: Any, *, path: str) -> list[str]:
    if value is None:
        return [f"{path or 'the object'} is null (omit the key instead)"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path} is {value!r}, which JSON cannot carry"]
    if isinstance(value, Mapping):
        errors = []
        for key, item in value.items():
            errors += _null_errors(item, path=f"{path}.{key}" if path else str(key))
        return errors
    if isinstance(value, list):
        errors = []
        for i, item in enumerate(value):
            errors += _null_errors(item, path=f"{path}[{i}]")
        return errors
    return []


# --- JSON type helpers ------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _INT_MIN <= value <= _INT_MAX


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):  # a price, as a feed declaration gives it
        return value.is_finite()
    return _is_int(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{_json_type(value)} ({text})"
