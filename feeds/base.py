"""What a feed is: a declaration of where its rows come from and how a row becomes a Clerk object.

A subclass (see `feeds.declarations`) sets `name`, `model`, `columns` (the `values()` columns
`to_object` reads), `modified_field`, `rows_leave_only_by_deletion` and `personal`, and
implements `rows()`, `attach_related(rows)` (related lists per batch, in a fixed number of
queries) and `to_object(row)` (a dict that obeys `feeds.rules`). `standard_attributes` comes
from Clerk's object table (`shop.clerk_objects`). Rows are `values()` dicts; a feed knows
nothing of HTTP, paging or JSON. One instance per response (its moment and language mode).
`Texts` writes the text attributes; `UnixTime`, `json_text`, `attach_lists` help `to_object`.
"""

from __future__ import annotations

import datetime as dt
import math
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson
from django.db.models import BigIntegerField, F, Func, Lookup, Model, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from feeds.rules import ATTRIBUTE_NAME_RE, is_language_object
from shop.clerk_objects import standard_attributes

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what orjson encodes and `feeds.rules` accepts
TRANSLATIONS = "translations"  # the column of `shop.models.Translatable`


class Texts:
    """How the text attributes of one response are written.

    * no languages configured: the base field, a plain string;
    * `language` given: that language's text, a plain string;
    * languages configured, no `language`: an object keyed by every configured language.

    A missing or empty translation falls back to the base field (Clerk wants every key present,
    even when the texts are equal).
    """

    def __init__(self, *, languages: Sequence[str] = (), language: str | None = None):
        self.languages = tuple(languages)
        self.language = language
        # No languages: every text is its base field as stored, "" for empty (see `text`). A
        # declaration may read such fields directly instead of calling `text` per field and row.
        self.plain = not self.languages

    @property
    def reads_translations(self) -> bool:
        return bool(self.languages)

    def text(self, row: Mapping[str, Any], field: str) -> str | dict[str, str]:
        """The text of a required attribute: always present, "" at worst."""
        base = row[field] or ""
        if not self.languages:
            return base
        translations = row.get(TRANSLATIONS) or {}
        if self.language is not None:
            return _translation(translations, self.language, field) or base
        return {lang: _translation(translations, lang, field) or base for lang in self.languages}

    def optional_text(self, row: Mapping[str, Any], field: str) -> str | dict[str, str] | None:
        """The text of an optional attribute, or None (omit the key) when it is empty everywhere."""
        value = self.text(row, field)
        if isinstance(value, dict):
            return value if any(value.values()) else None
        return value or None

    def extra(self, value: Any) -> Any:
        """An extra attribute's value as this response writes it (None: leave it out).

        Clerk's types only (str, int, float, bool, arrays of them), no nulls at any depth, no
        NaN (orjson would write it as null). An object is kept only as a text per language.
        """
        # Decoded JSON holds exactly these types: decided by identity first (an `isinstance`
        # against `Mapping` is an ABC check, the costliest step of a product row). Anything
        # else, subclasses included, takes the general path below, which decides the same.
        kind = type(value)
        if kind is str or kind is bool:
            return value
        if kind is int:
            return value if _INT_MIN <= value <= _INT_MAX else None
        if kind is float:
            return value if math.isfinite(value) else None
        if kind is list:
            return [item for item in value if type(item) is str or _scalar(item) is not None]
        if isinstance(value, Mapping):
            if self.language is not None:
                text = value.get(self.language)
                return text if isinstance(text, str) else None
            return dict(value) if is_language_object(value, self.languages) else None
        if isinstance(value, list):
            return [item for item in value if _scalar(item) is not None]
        return _scalar(value)


def _translation(translations: Any, language: str, field: str) -> str:
    texts = translations.get(language) if isinstance(translations, Mapping) else None
    text = texts.get(field) if isinstance(texts, Mapping) else None
    return text if isinstance(text, str) else ""


def _scalar(value: Any) -> Any:
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


class _StandardAttributes:
    """`Feed.standard_attributes`: the fields of the feed's type that the declaration writes
    itself, read from Clerk's object table (`shop.clerk_objects`) when asked."""

    def __get__(self, instance: Feed | None, owner: type[Feed]) -> frozenset[str]:
        name = getattr(owner, "name", None)
        return standard_attributes(name) if name else frozenset()


class Feed(ABC):
    """Base of the feed declarations; see the module docstring for the contract."""

    name: ClassVar[str]
    model: ClassVar[type[Model]]
    columns: ClassVar[tuple[str, ...]]
    modified_field: ClassVar[str] = "updated_at"
    # Attributes the declaration itself owns (present or omitted): extras never set them.
    standard_attributes: ClassVar[frozenset[str]] = _StandardAttributes()  # type: ignore[assignment]
    # True only when a row leaves `rows()` solely by being deleted, and every deletion is queued
    # in the GDPR outbox under the feed's `name` (`gdpr.receivers`): then, while no deletion is
    # recent, a cold page seeks exactly (`feeds.pagination`). False (the safe default) when rows
    # also leave with time or by a change of state (the GDPR window, a withdrawal).
    rows_leave_only_by_deletion: ClassVar[bool] = False
    # True for personal data: `feeds.stream` records each batch's ids as held by Clerk
    # (`gdpr.holdings`) before producing its bytes, so the GDPR sweep can take them back.
    personal: ClassVar[bool] = False

    def __init__(
        self,
        *,
        now: dt.datetime | None = None,
        languages: Sequence[str] = (),
        language: str | None = None,
    ):
        self.now = now or timezone.now()
        self.texts = Texts(languages=languages, language=language)
        self._extra_names: dict[Any, bool] = {}

    # --- hooks a declaration implements ---------------------------------------------------------
    def rows(self) -> QuerySet:
        """Everything this feed may show. Override to narrow it (e.g. the GDPR policy)."""
        return self.model._default_manager.all()

    def attach_related(self, rows: list[dict[str, Any]]) -> None:
        """Add related lists to a batch of rows (in primary-key order), in a fixed number of
        queries (see `keys_lookup`). Default: none."""

    @abstractmethod
    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        """The Clerk object for one row (with its related lists attached)."""

    # --- what the paging and streaming code reads -------------------------------------------------
    @classmethod
    def pk_name(cls) -> str:
        return cls.model._meta.pk.attname

    def selection(self, *, modified_since: dt.datetime | None = None) -> QuerySet:
        """`rows()`, narrowed to rows changed at or after `modified_since`, in primary-key order."""
        queryset = self.rows()
        if modified_since is not None:
            queryset = queryset.filter(**{f"{self.modified_field}__gte": modified_since})
        return queryset.order_by(self.pk_name())

    def read_columns(self) -> tuple[str, ...]:
        """The columns a page reads: `columns`, without the translations a plain feed never shows."""
        if self.texts.reads_translations:
            return self.columns
        return tuple(c for c in self.columns if c != TRANSLATIONS)

    def objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Clerk objects of one batch of rows, in the batch's order."""
        if rows:
            self.attach_related(rows)
        return [self.to_object(row) for row in rows]

    # --- helpers for `to_object` -------------------------------------------------------------------
    def merge_extras(self, obj: dict[str, Any], extras: Any) -> dict[str, Any]:
        """`obj` with the row's extra attributes added; they never set a standard attribute
        (`standard_attributes`, whether `obj` carries it or left it out on purpose).

        Names Clerk would ignore (not `^[A-Za-z0-9_]+$`) and values it cannot take are dropped
        rather than sent, so one bad attribute in the shop never breaks a feed.
        """
        if not (type(extras) is dict or isinstance(extras, Mapping)) or not extras:
            return obj
        extra = self.texts.extra
        known = self._extra_names
        for name, value in extras.items():
            if name in obj:
                continue
            verdict = known.get(name)  # `_may_carry`, inlined for its memoised answer
            if not (verdict or (verdict is None and self._may_carry(name))):
                continue
            # Plain strings are by far the commonest values: no detour.
            if type(value) is not str:
                value = extra(value)
                if value is None:
                    continue
            obj[name] = value  # after the standard attributes: a reader sees `id` first
        return obj

    def _may_carry(self, name: Any) -> bool:
        """Whether an extra attribute called `name` may be written (memoised: a shop's extra
        attribute names are few and repeat on every row)."""
        known = self._extra_names
        verdict = known.get(name)
        if verdict is None:
            verdict = (
                isinstance(name, str)
                and name not in self.standard_attributes
                and ATTRIBUTE_NAME_RE.fullmatch(name) is not None
            )
            if len(known) < 10_000:  # bounded, whatever the shop stores
                known[name] = verdict
        return verdict


class UnixTime(Func):
    """Integer unix seconds of a datetime column (rounded down), computed by the database.

    Per row, building an aware `datetime` and converting it back costs more in Python than the
    rest of a product; the database does it for nothing. Same value as `unix_time()`.
    """

    output_field = BigIntegerField()

    def get_db_converters(self, connection):
        # Both templates cast to an integer in SQL, so the driver already returns an int (or
        # None): Django's per-row `int()` converter would only cost a pass over every row.
        return self.output_field.get_db_converters(connection)

    def as_postgresql(self, compiler, connection, **extra):
        template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s))::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC): the first 19 characters, because
        # strftime would round the fraction up. '%%%%' is '%%' after this template and '%'
        # after Django's SQLite parameter style.
        template = "CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra)


def json_text(field: str) -> Cast:
    """An annotation reading JSON column `field` as its text, for `decode_json` in `to_object`.

    Read as a JSON field, every row of a page passes through Django's per-row converters; with
    no converter left on a query, Django hands the rows over untouched. The text is what the
    database sends for the JSON column anyway (PostgreSQL's jsonb output, SQLite's stored text).
    """
    return Cast(field, output_field=TextField())


def decode_json(text: Any) -> Any:
    """The value of a `json_text` column, exactly as `shop.models.FastJSONField` reads it: the
    decoded JSON; the text itself when it does not decode; None for NULL."""
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


# A batch whose keys span at most this many times its size is fetched by key range.
DENSE_SPAN = 1.5


class AmongKeys(Lookup):
    """`lhs` is one of the integer keys `rhs`, with one parameter however many keys there are:
    `= ANY(array)` on PostgreSQL, `IN (json_each(…))` on SQLite, Django's `IN` elsewhere.

    Django's `IN` builds a placeholder per value: about 7 ms of query building for 1,000 keys."""

    lookup_name = "among_keys"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        keys = [int(key) for key in self.rhs]
        if connection.vendor == "postgresql":
            # The array's text form: one string for the driver to quote, not a list to adapt.
            return f"{lhs_sql} = ANY(%s::bigint[])", (*lhs_params, "{" + ",".join(map(str, keys)) + "}")
        if connection.vendor == "sqlite":
            return f"{lhs_sql} IN (SELECT value FROM json_each(%s))", (*lhs_params, orjson.dumps(keys).decode())
        if not keys:
            return "1 = 0", tuple(lhs_params)
        return f"{lhs_sql} IN ({', '.join(['%s'] * len(keys))})", (*lhs_params, *keys)


def keys_lookup(field: str, keys: Sequence[int]) -> Q:
    """The filter selecting the related rows of a batch, given its keys in ascending order.

    A dense batch (the usual case: a page of an unfiltered feed) is selected by key range: one
    index range scan. A sparser batch (a filtered feed: `modified_after`, the GDPR policy) is
    selected by its keys (`AmongKeys`), so it never reads the related rows of the keys it
    skipped. A range may still match keys outside the batch: callers look results up by key and
    ignore them.
    """
    if keys:
        low, high = keys[0], keys[-1]
        if high - low < DENSE_SPAN * len(keys):
            return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return Q(AmongKeys(F(field), list(keys)))


def attach_lists(
    rows: list[dict[str, Any]],
    related: QuerySet,
    *,
    key: str,
    values: tuple[str, ...],
    into: str,
    item: Callable[..., Any] | None = None,
) -> None:
    """Give every row of a batch (in primary-key order) the list of its related values, read
    in one query: `rows[i][into]` = [item(*values) of each related row whose `key` is the row's
    id], ordered by `key` then `values`. Without `item`, the single value itself."""
    grouped: dict[Any, list[Any]] = defaultdict(list)
    related_rows = (
        related.filter(keys_lookup(key, [row["id"] for row in rows])).order_by(key, *values).values_list(key, *values)
    )
    if item is None and len(values) == 1:
        # The common shape (ids of related rows): no per-row unpacking into a list.
        for owner, value in related_rows:
            grouped[owner].append(value)
    else:
        wanted = {row["id"] for row in rows}  # a key range also brings the skipped keys' rows
        for owner, *fields in related_rows:
            if owner in wanted:
                grouped[owner].append(item(*fields) if item is not None else fields[0])
    for row in rows:
        row[into] = grouped.get(row["id"], [])


def unix_time(moment: dt.datetime) -> int:
    """Integer unix seconds (Clerk's time type), rounded down."""
    return math.floor(moment.timestamp())


def age_on(birth_date: dt.date, today: dt.date) -> int | None:
    """Whole years from `birth_date` to `today`; None for a date in the future."""
    years = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    return years if years >= 0 else None
