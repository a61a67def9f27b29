"""Clerk's object rules as a feed object must obey them, read from `shop.clerk_objects`.

`object_errors(type_name, obj, languages=...)` lists every way one object breaks them (as
sentences, [] when it obeys), `feed_errors()` does so for a whole feed and adds duplicate ids;
`is_language_object()` says whether a value is a text per configured language. `TEXT_ATTRIBUTES`
are each type's translatable fields. The feeds' tests and `manage.py clerk_check` run every
object through them; the rules themselves are listed in docs/feeds.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from shop.clerk_objects import ATTRIBUTE_NAME_RE, FEED_TYPES, KINDS, OBJECTS, ORDER_LINE, Field, feed_fields

__all__ = [
    "ATTRIBUTE_NAME_RE",
    "FEED_TYPES",
    "TEXT_ATTRIBUTES",
    "feed_errors",
    "feed_kind",
    "is_language_object",
    "object_errors",
]

# The kinds a feed object's field is checked against: `shop.clerk_objects.KINDS`' JSON kinds, and
# "text" for a translatable field (a string, or a language object when the feed is multi-language).
_TEXT, _STR, _ID, _TIME, _NUMBER, _INT, _BOOL, _IDS = ("text", "str", "id", "time", "number", "int", "bool", "ids")


def feed_kind(field: Field) -> str:
    """What a feed object's value of `field` must be (see `_kind_errors`)."""
    return _TEXT if field.translatable else KINDS[field.kind]


def _kinds(type_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The required and the optional fields of `type_name`, each name -> its feed kind."""
    fields = feed_fields(type_name)
    required = {name: feed_kind(f) for name, f in fields.items() if f.required}
    optional = {name: feed_kind(f) for name, f in fields.items() if not f.required}
    return required, optional


# Text attributes that carry one text per language in a multi-language feed.
TEXT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    type_name: tuple(name for fields in _kinds(type_name) for name, kind in fields.items() if kind == _TEXT)
    for type_name in FEED_TYPES
}

# Beyond 64 bits orjson refuses to encode an int and Clerk could not store it.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def object_errors(type_name: str, obj: Any, *, languages: Sequence[str] = ()) -> list[str]:
    """Every way `obj` breaks Clerk's rules for `type_name`, as sentences; [] when it obeys.

    `languages` are the configured language names when the feed is multi-language (every text
    attribute must then be an object with exactly those keys), empty for a plain feed (or a
    feed rendered in one language).
    """
    if type_name not in OBJECTS:
        raise ValueError(f"Unknown feed type {type_name!r}; expected one of {FEED_TYPES}.")
    if not isinstance(obj, Mapping):
        return [f"a {type_name} object must be a JSON object, not {_json_type(obj)}"]
    languages = tuple(languages)
    errors: list[str] = []
    errors += _null_errors(obj, path="")
    for name in obj:
        if not isinstance(name, str) or not ATTRIBUTE_NAME_RE.fullmatch(name):
            errors.append(f"attribute name {name!r} is not made of A-Z, a-z, 0-9 and _")
    required, optional = _kinds(type_name)
    closed = OBJECTS[type_name].closed
    for name in required:
        if name not in obj:
            errors.append(f"required field {name!r} is missing")
    if closed:
        for name in obj:
            if name not in required and name not in optional:
                errors.append(f"{type_name} may not carry attribute {name!r}")
    for name, value in obj.items():
        if value is None:
            continue  # already reported as a null
        kind = required.get(name) or optional.get(name)
        if kind is not None:
            errors += _kind_errors(name, value, kind, languages)
        elif not closed:
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
        for key in ORDER_LINE.keys() - set(line):
            errors.append(f"{where} lacks {key!r}")
        for key in set(line) - ORDER_LINE.keys():
            errors.append(f"{where} may not carry {key!r}")
        for key, field in ORDER_LINE.items():
            item = line.get(key)
            valid, expected = _LINE_CHECKS[KINDS[field.kind]]
            if item is not None and not valid(item):
                errors.append(f"{where}.{key} must be {expected}, not {_describe(item)}")
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


# An order line's JSON kinds: (the check, what the value must be).
_LINE_CHECKS = {_ID: (_is_int, "an integer id"), _INT: (_is_int, "an integer"), _NUMBER: (_is_number, "a number")}


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
