"""Validating one imported object against Clerk's object rules and what the shop's models hold.

`validate(type_name, value, rules)` turns one object of an import file into a `CleanObject`
(model column values, ready to write) or lists every way it is wrong as `Problem(field,
reason)`s. Which fields a type has, their kinds, which are required or translatable: the table
in `shop.clerk_objects`; each kind's check is a method of `_Reader`. `Rules` carries the run's
languages, consent ledger check and clock. One object at a time: what needs the whole file or
the database is `shop.importing`'s. The rules in full: docs/import.md.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from shop.clerk_objects import ATTRIBUTE_NAME_RE, OBJECTS, ORDER_LINE, Field, import_fields
from shop.languages import base_language, known_languages
from shop.models import Category, Customer, Page, Product

TYPES = ("categories", "products", "pages", "customers", "orders")
"""Every importable type, in the order an import writes them (dependencies first)."""

MIN_ID, MAX_ID = -(2**63), 2**63 - 1  # the primary keys are 64-bit integers
MIN_TIME = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_QUANTITY = 2**31 - 1  # PositiveIntegerField
MAX_AGE = 150
MAX_AHEAD = dt.timedelta(days=1)  # how far a time may lie ahead of the import's clock
MAX_SAFE_FLOAT = 2.0**53  # doubles are exact integers up to here
PRICE_PLACES = Decimal("0.0001")  # the price columns' decimal_places = 4
PRICE_LIMIT = Decimal(10) ** 14  # max_digits 18 - 4 places
NULL = "null is not allowed (omit the key instead)"

_URL_RE = re.compile(r"https?://[^\x00-\x20\x7f]+")  # no spaces, no control characters
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_BAD = object()  # a value that failed its check (the problem is already recorded)
_ABSENT = object()  # a key the object does not have


@dataclass(slots=True)
class Problem:
    field: str  # a path into the object: "price", "categories[2]", "consents[0].purpose"
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


@dataclass(frozen=True, slots=True)
class OrderLineData:
    product_id: int
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class ConsentData:
    purpose: str
    granted: bool
    at: dt.datetime
    source: str
    evidence: str


@dataclass(slots=True)
class CleanObject:
    """A valid object, as the shop's models hold it."""

    id: int
    row: dict[str, Any]  # model column -> value, without id, updated_at and relations
    updated_at: dt.datetime | None = None  # given by the file, else None
    links: tuple[int, ...] = ()  # products: category ids; categories: subcategory ids
    lines: tuple[OrderLineData, ...] = ()  # orders
    consents: tuple[ConsentData, ...] = ()  # customers
    subscribed: bool | None = None  # customers: the claimed marketing state, when given


# (purpose, source, at) -> [(field, reason)]: the ledger's own rules for one consent entry
ConsentCheck = Callable[[str, str, dt.datetime], list[tuple[str, str]]]


@dataclass
class Rules:
    """What validation needs to know beyond the object: configured languages, the ledger, and
    the import's clock (read once per run: every object is judged against the same moment)."""

    languages: Sequence[str] = ()
    consent_check: ConsentCheck | None = None
    now: dt.datetime = field(kw_only=True)  # the caller reads the clock once per run
    known: frozenset[str] = field(init=False)
    latest: dt.datetime = field(init=False)  # the latest time an object may carry
    fields: dict[str, dict[str, Field]] = field(init=False)  # type -> what it reads into columns

    def __post_init__(self) -> None:
        self.languages = tuple(self.languages)
        self.known = known_languages(self.languages)
        self.latest = self.now + MAX_AHEAD
        self.fields = {type_name: import_fields(type_name) for type_name in OBJECTS}


# Types whose texts are personal data: error messages never repeat them.
PERSONAL = frozenset({"customers", "orders"})


def validate(type_name: str, value: Any, rules: Rules) -> tuple[CleanObject | None, list[Problem]]:
    """Check one object; returns (the clean object, []) or (None, its problems)."""
    personal = type_name in PERSONAL
    if not isinstance(value, dict):
        shown = describe(value, redact=personal)
        return None, [Problem("", f"must be a JSON object, not {shown}")]
    reader = _Reader(value, rules, rules.fields[type_name], redact=personal)
    clean = _VALIDATORS[type_name](reader)
    if reader.problems:
        return None, reader.problems
    return clean, []


def object_id(value: Any) -> int | None:
    """The object's id when it has a valid one (for reports and duplicate detection)."""
    if isinstance(value, dict):
        oid = value.get("id")
        if type(oid) is int and MIN_ID <= oid <= MAX_ID:
            return oid
    return None


def describe(value: Any, *, redact: bool = False) -> str:
    """A short description of a JSON value for an error message; `redact` leaves texts out."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})" if abs(value) < 10**20 else "a very large integer"
    if isinstance(value, (Decimal, float)):
        return f"a decimal number ({value})" if len(str(value)) <= 30 else "a decimal number"
    if isinstance(value, str):
        if redact:
            return "a string"
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unstorable(text: str) -> str | None:
    """Why a string cannot be stored as text (PostgreSQL refuses both), or None."""
    if "\x00" in text:
        return "contains a NUL character, which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def subscribed_problem(claimed: bool, marketing: bool | None) -> Problem | None:
    """Why a customer's `subscribed` disagrees with the ledger: `marketing` is the latest
    marketing record once the row's consents are appended (True grant, False withdrawal, None
    none), as `shop.importing.ConsentLedger.marketing_after` gives it; None when it agrees."""
    if claimed == (marketing is True):
        return None
    latest = {
        None: "there is no marketing consent record",
        True: "the latest marketing consent record is a grant",
        False: "the latest marketing consent record is a withdrawal",
    }[marketing]
    return Problem(
        "subscribed",
        f"is {'true' if claimed else 'false'}, but {latest} (this row's consents included): "
        "a flag is no proof of consent: send a marketing consent record "
        '(consents: [{"purpose": "marketing", "granted": …}])',
    )


def to_datetime(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


# --- per type ----------------------------------------------------------------------------------
_CONSENT_KEYS = frozenset({"purpose", "granted", "at", "source", "evidence"})


@cache
def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _product(r: _Reader) -> CleanObject:
    oid = r.field("id")
    row = {
        "name": r.field("name", max_length=_max_length(Product, "name"), nonempty=True),
        "description": r.field("description"),
        "price": r.field("price"),
        "list_price": r.field("list_price"),
        "image": r.field("image", max_length=_max_length(Product, "image")),
        "url": r.field("url", max_length=_max_length(Product, "url")),
        "brand": r.field("brand", default="", max_length=_max_length(Product, "brand"), nonempty=True),
        "created_at": r.field("created_at"),
        "index": r.field("index", default=True),
        "attributes": r.extras(),
        "translations": r.translations,
    }
    categories = r.field("categories")
    return CleanObject(oid, row, r.field("updated_at"), links=categories or ())


def _category(r: _Reader) -> CleanObject:
    r.closed("categories")
    oid = r.field("id")
    row = {
        "name": r.field("name", max_length=_max_length(Category, "name"), nonempty=True),
        "url": r.field("url", max_length=_max_length(Category, "url")),
        "image": r.field("image", default="", max_length=_max_length(Category, "image")),
        "description": r.field("description", default=""),
        "translations": r.translations,
    }
    subcategories = r.field("subcategories")
    return CleanObject(oid, row, r.field("updated_at"), links=subcategories or ())


def _page(r: _Reader) -> CleanObject:
    oid = r.field("id")
    row = {
        "type": r.field("type", max_length=_max_length(Page, "type"), nonempty=True),
        "url": r.field("url", max_length=_max_length(Page, "url")),
        "title": r.field("title", max_length=_max_length(Page, "title"), nonempty=True),
        "text": r.field("text"),
        "image": r.field("image", default="", max_length=_max_length(Page, "image")),
        "attributes": r.extras(),
        "translations": r.translations,
    }
    return CleanObject(oid, row, r.field("updated_at"))


def _customer(r: _Reader) -> CleanObject:
    r.closed("customers")
    oid = r.field("id")
    row = {
        "name": r.field("name", max_length=_max_length(Customer, "name"), nonempty=True),
        "email": r.field("email"),
        "zip": r.field("zip", default="", max_length=_max_length(Customer, "zip"), nonempty=True),
        "gender": r.field("gender", default="", max_length=_max_length(Customer, "gender"), nonempty=True),
        "age": r.field("age"),
        "birth_date": r.field("birth_date"),
        "is_b2b": r.field("is_b2b"),
        "registered_at": r.field("registered_at"),
        "terms_accepted_at": r.field("terms_accepted_at"),
    }
    consents = r.field("consents", default=())
    subscribed = r.field("subscribed")
    if type(subscribed) is bool and r.rules.consent_check is None:
        subscribed = r.problem("subscribed", "this import has no consent ledger to check it against")
    return CleanObject(oid, row, r.field("updated_at"), consents=consents, subscribed=subscribed)


def _order(r: _Reader) -> CleanObject:
    r.closed("orders")
    oid = r.field("id")
    row = {
        "customer_id": r.field("customer"),
        "email": r.field("email", default=""),
        "placed_at": r.field("time"),
        "terms_accepted_at": r.field("terms_accepted_at"),
    }
    lines = r.field("products")
    return CleanObject(oid, row, r.field("updated_at"), lines=lines or ())


_VALIDATORS: dict[str, Callable[[_Reader], CleanObject]] = {
    "products": _product,
    "categories": _category,
    "pages": _page,
    "customers": _customer,
    "orders": _order,
}


# --- field checks ------------------------------------------------------------------------------
class _Reader:
    """Reads the fields of one object, recording a `Problem` for each bad one.

    Each check takes (path, value) and returns the clean value, or `_BAD` after recording why.
    """

    def __init__(self, obj: dict, rules: Rules, fields: dict[str, Field], *, redact: bool = False):
        self.obj = obj
        self.redact = redact
        self.rules = rules
        self.fields = fields  # `shop.clerk_objects.import_fields` of the object's type
        self.problems: list[Problem] = []
        self.translations: dict[str, dict[str, str]] = {}

    def describe(self, value: Any) -> str:
        return describe(value, redact=self.redact)

    def problem(self, path: str, reason: str) -> object:
        self.problems.append(Problem(path, reason))
        return _BAD

    # fields ------------------------------------------------------------------------------------
    def field(self, name: str, default: Any = None, **options) -> Any:
        """The clean value of field `name`, checked by its kind (`_CHECKS`); `default` when an
        optional field is absent. `options` go to the kind's check."""
        spec = self.fields[name]
        check = getattr(self, _CHECKS[spec.kind])
        value = self.obj.get(name, _ABSENT)
        if value is _ABSENT:
            if spec.required and not spec.import_optional:
                return self.problem(name, "missing (required)")
            return default
        if value is None:
            return self.problem(name, NULL)
        if type(value) is dict and spec.translatable:
            return self._translated(name, value, check, options)
        return check(name, value, **options)

    def closed(self, type_name: str) -> None:
        """Refuse keys this type does not carry."""
        for name in self.obj:
            if name not in self.fields:
                known = ", ".join(sorted(self.fields))
                self.problem(name, f"unknown field: {type_name} carry only {known}")

    def extras(self) -> dict[str, Any]:
        """Every non-standard key: an extra attribute, kept as given in `attributes`."""
        standard = self.fields
        extras: dict[str, Any] = {}
        for name, value in self.obj.items():
            if name in standard:
                continue
            if not ATTRIBUTE_NAME_RE.fullmatch(name):
                # Clerk silently ignores such attributes; refusing them says so while it can be fixed.
                self.problem(name or '""', "attribute names may contain only A-Z, a-z, 0-9 and _")
                continue
            clean = self._extra_value(name, value)
            if clean is not _BAD:
                extras[name] = clean
        return extras

    # kinds -------------------------------------------------------------------------------------
    def id_(self, path: str, value: Any) -> Any:
        if type(value) is int and MIN_ID <= value <= MAX_ID:
            return value
        if type(value) is int:
            return self.problem(path, "is outside the 64-bit integer range of ids")
        return self.problem(path, f"must be an integer id, not {self.describe(value)}")

    def text(self, path: str, value: Any, *, max_length: int | None = None, nonempty: bool = False) -> Any:
        if type(value) is not str:
            return self.problem(path, f"must be a string, not {self.describe(value)}")
        if ("\x00" in value or not value.isascii()) and (reason := unstorable(value)) is not None:
            return self.problem(path, reason)
        if nonempty and not value:
            return self.problem(path, "must not be empty")
        if max_length is not None and len(value) > max_length:
            return self.problem(path, f"is longer than {max_length} characters")
        return value

    def url(self, path: str, value: Any, *, max_length: int | None = None) -> Any:
        if type(value) is not str:
            return self.problem(path, f"must be a URL string, not {self.describe(value)}")
        if not _URL_RE.fullmatch(value) or (not value.isascii() and unstorable(value) is not None):
            return self.problem(path, f"must be a full http(s) URL, not {self.describe(value)}")
        if max_length is not None and len(value) > max_length:
            return self.problem(path, f"is longer than {max_length} characters")
        return value

    def email(self, path: str, value: Any) -> Any:
        if type(value) is not str:
            return self.problem(path, f"must be an email address string, not {self.describe(value)}")
        if len(value) > 254 or not _EMAIL_RE.fullmatch(value) or unstorable(value) is not None:
            return self.problem(path, "is not an email address")
        return value

    def price(self, path: str, value: Any) -> Any:
        if type(value) is int:
            value = Decimal(value)
        elif type(value) is not Decimal:
            return self.problem(path, f"must be a number, not {self.describe(value)}")
        if value < 0:
            return self.problem(path, "must not be negative")
        try:
            exact = value.quantize(PRICE_PLACES)
        except InvalidOperation:
            return self.problem(path, "is too large")
        if exact != value:
            return self.problem(path, "has more than 4 decimal places")
        if exact >= PRICE_LIMIT:
            return self.problem(path, "is too large (at most 14 digits before the point)")
        return exact

    def time(self, path: str, value: Any) -> Any:
        """A time of the object (not a consent's): at most `MAX_AHEAD` after the run's clock. A
        time from the future would keep an order or a customer "recent" until it came."""
        moment = self.instant(path, value)
        if moment is not _BAD and moment > self.rules.latest:
            return self.problem(path, f"{value} is more than a day in the future")
        return moment

    def instant(self, path: str, value: Any) -> Any:
        if type(value) is not int:
            return self.problem(path, f"must be an integer unix time in seconds, not {self.describe(value)}")
        if not MIN_TIME <= value <= MAX_TIME:
            return self.problem(path, "is outside the years 1 to 9999")
        return to_datetime(value)

    def boolean(self, path: str, value: Any) -> Any:
        if type(value) is not bool:
            return self.problem(path, f"must be true or false, not {self.describe(value)}")
        return value

    def age(self, path: str, value: Any) -> Any:
        if type(value) is not int:
            return self.problem(path, f"must be an integer, not {self.describe(value)}")
        if not 0 <= value <= MAX_AGE:
            return self.problem(path, f"must be between 0 and {MAX_AGE}")
        return value

    def date(self, path: str, value: Any) -> Any:
        if type(value) is not str or not _DATE_RE.fullmatch(value):
            return self.problem(path, f'must be a date "YYYY-MM-DD", not {self.describe(value)}')
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return self.problem(path, "is not a valid date")

    def id_list(self, path: str, value: Any) -> Any:
        if type(value) is not list:
            return self.problem(path, f"must be an array of integer ids, not {self.describe(value)}")
        ids: list[int] = []
        seen: set[int] = set()
        before = len(self.problems)
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if item is None:
                self.problem(where, NULL)
            elif type(item) is not int or not MIN_ID <= item <= MAX_ID:
                self.problem(where, f"must be an integer id, not {self.describe(item)}")
            elif item in seen:
                self.problem(where, f"lists {item} twice")
            else:
                seen.add(item)
                ids.append(item)
        return tuple(ids) if len(self.problems) == before else _BAD

    def order_lines(self, path: str, value: Any) -> Any:
        if type(value) is not list:
            return self.problem(path, f"must be an array of {{id, quantity, price}}, not {self.describe(value)}")
        if not value:
            return self.problem(path, "an order needs at least one product line")
        lines: list[OrderLineData] = []
        before = len(self.problems)
        for i, line in enumerate(value):
            where = f"{path}[{i}]"
            if line is None:
                self.problem(where, NULL)
                continue
            if type(line) is not dict:
                self.problem(where, f"must be an object {{id, quantity, price}}, not {self.describe(line)}")
                continue
            for key in line:
                if key not in ORDER_LINE:
                    self.problem(f"{where}.{key}", f"unknown field: order lines carry only {', '.join(ORDER_LINE)}")
            values = []
            for key, spec in ORDER_LINE.items():
                check = getattr(self, _CHECKS[spec.kind])
                if key not in line:
                    values.append(self.problem(f"{where}.{key}", "missing (required)"))
                elif line[key] is None:
                    values.append(self.problem(f"{where}.{key}", NULL))
                else:
                    values.append(check(f"{where}.{key}", line[key]))
            if _BAD not in values:
                lines.append(OrderLineData(*values))
        return tuple(lines) if len(self.problems) == before else _BAD

    def _quantity(self, path: str, value: Any) -> Any:
        if type(value) is not int:
            return self.problem(path, f"must be an integer, not {self.describe(value)}")
        if not 1 <= value <= MAX_QUANTITY:
            return self.problem(path, "must be a positive integer")
        return value

    def consents(self, path: str, value: Any) -> Any:
        if type(value) is not list:
            return self.problem(path, f"must be an array of consent objects, not {self.describe(value)}")
        if value and self.rules.consent_check is None:
            return self.problem(path, "this import has no consent ledger to write them to")
        consents: list[ConsentData] = []
        before = len(self.problems)
        for i, entry in enumerate(value):
            where = f"{path}[{i}]"
            if entry is None:
                self.problem(where, NULL)
                continue
            if type(entry) is not dict:
                self.problem(where, f"must be a consent object, not {self.describe(entry)}")
                continue
            consent = self._consent(where, entry)
            if consent is not None:
                consents.append(consent)
        return tuple(consents) if len(self.problems) == before else _BAD

    def _consent(self, where: str, entry: dict) -> ConsentData | None:
        for key in entry:
            if key not in _CONSENT_KEYS:
                self.problem(
                    f"{where}.{key}",
                    "unknown field: a consent carries only purpose, granted, at, source, evidence",
                )
        checks = {
            "purpose": self.text,
            "granted": self.boolean,
            "at": self.instant,  # the ledger's own rule follows (`Rules.consent_check`)
            "source": self.text,
            "evidence": self.text,
        }
        values: dict[str, Any] = {}
        for key, check in checks.items():
            if key not in entry:
                values[key] = "" if key == "evidence" else self.problem(f"{where}.{key}", "missing (required)")
            elif entry[key] is None:
                values[key] = self.problem(f"{where}.{key}", NULL)
            else:
                values[key] = check(f"{where}.{key}", entry[key])
        if _BAD in values.values():
            return None
        found = self.rules.consent_check(values["purpose"], values["source"], values["at"])
        for key, reason in found:
            self.problem(f"{where}.{key}", reason)
        return None if found else ConsentData(**values)

    # extra attributes and languages ------------------------------------------------------------
    def _extra_value(self, path: str, value: Any) -> Any:
        if value is None:
            return self.problem(path, NULL)
        if type(value) is dict:
            # The only object Clerk understands as a value: a text per language.
            return self._language_texts(path, value)
        if type(value) is list:
            items = [self._scalar(f"{path}[{i}]", item) for i, item in enumerate(value)]
            return _BAD if _BAD in items else items
        return self._scalar(path, value)

    def _scalar(self, path: str, value: Any) -> Any:
        if value is None:
            return self.problem(path, NULL)
        kind = type(value)
        if kind is str:
            if ("\x00" in value or not value.isascii()) and (reason := unstorable(value)) is not None:
                return self.problem(path, reason)
            return value
        if kind is bool:
            return value
        if kind is int:
            if MIN_ID <= value <= MAX_ID:
                return value
            return self.problem(path, "is outside the 64-bit integer range")
        if kind is Decimal or kind is float:
            # Extra attributes are stored as JSON numbers (double precision), like Clerk keeps them.
            number = float(value) + 0.0  # no negative zero: PostgreSQL's JSON has none
            if not math.isfinite(number) or abs(number) >= MAX_SAFE_FLOAT:
                # Beyond 2**53 a double is no longer exact, and PostgreSQL's JSON would give it
                # back as an integer: every later import would see a change that is not there.
                return self.problem(path, f"is too large for a decimal attribute (below {MAX_SAFE_FLOAT:.0f})")
            return number
        return self.problem(
            path,
            f"must be a string, number or boolean (or an array of them, or a text per language), "
            f"not {self.describe(value)}",
        )

    def _translated(self, name: str, value: dict, check: Callable, options: dict) -> Any:
        """A text attribute given per language: every text to `translations`, one to the base."""
        texts = self._language_texts(name, value, lambda path, text: check(path, text, **options))
        if texts is _BAD:
            return _BAD
        for language, text in texts.items():
            self.translations.setdefault(language, {})[name] = text
        return texts[base_language(texts, self.rules.languages)]

    def _language_texts(self, path: str, value: dict, check: Callable | None = None) -> Any:
        """{language: text} with Clerk's language names; `check` vets each text."""
        if not value:
            return self.problem(path, "a text per language needs at least one language")
        texts: dict[str, str] = {}
        ok = True
        for language, text in value.items():
            where = f"{path}.{language}"
            if language not in self.rules.known:
                known = ", ".join(sorted(self.rules.known))
                clean = self.problem(where, f"is not one of Clerk's language names ({known})")
            elif text is None:
                clean = self.problem(where, NULL)
            elif check is not None:
                clean = check(where, text)
            elif type(text) is not str:
                clean = self.problem(where, f"must be a string, not {self.describe(text)}")
            elif (reason := unstorable(text)) is not None:
                clean = self.problem(where, reason)
            else:
                clean = text
            if clean is _BAD:
                ok = False
            else:
                texts[language] = clean
        return texts if ok else _BAD


# Each kind of `shop.clerk_objects` an import reads -> the `_Reader` method that checks it.
_CHECKS = {
    "id": "id_",
    "ids": "id_list",
    "text": "text",
    "url": "url",
    "email": "email",
    "price": "price",
    "time": "time",
    "bool": "boolean",
    "age": "age",
    "date": "date",
    "quantity": "_quantity",
    "order_lines": "order_lines",
    "consents": "consents",
}
