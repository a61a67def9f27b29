"""The per-row fast paths of `feeds.base` decide exactly what the general rules decide.

Extra attributes are checked by identity of type first (`Texts.extra`, `Feed.merge_extras`), and
JSON columns are read as text and decoded in `to_object` (`json_text`, `decode_json`). Each is
compared here with an independent statement of the rule, on arbitrary JSON values: a feed must
come out byte for byte as it did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.base import Texts, decode_json
from feeds.declarations import PageFeed, ProductFeed
from feeds.rules import ATTRIBUTE_NAME_RE
from shop.models import FastJSONField, Product
from tests.factories import ProductFactory

LANGUAGES = ("italian", "english")
_INT_RANGE = (-(2**63), 2**63 - 1)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["italian", "english", "x", "id"]), inner, max_size=3),
    ),
    max_leaves=12,
)
names = st.one_of(
    st.sampled_from(["id", "name", "price", "color_names", "bad-name", "ok_1", "", "é"]), st.text(max_size=6)
)


def oracle_scalar(value):
    """Clerk's scalar types, NaN and out-of-range integers excluded (None: not sendable)."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def oracle_extra(value, languages, language):
    if isinstance(value, Mapping):
        if language is not None:
            text = value.get(language)
            return text if isinstance(text, str) else None
        ok = bool(languages) and set(value) == set(languages) and all(isinstance(t, str) for t in value.values())
        return dict(value) if ok else None
    if isinstance(value, list):
        return [item for item in value if oracle_scalar(item) is not None]
    return oracle_scalar(value)


def oracle_merge(obj, extras, standard, languages, language):
    if not isinstance(extras, Mapping) or not extras:
        return obj
    for name, value in extras.items():
        # The name rule itself is not what is compared here: `feeds.rules`' own pattern.
        if name in obj or name in standard or not isinstance(name, str) or not ATTRIBUTE_NAME_RE.fullmatch(name):
            continue
        value = oracle_extra(value, languages, language)
        if value is not None:
            obj[name] = value
    return obj


MODES = [((), None), (LANGUAGES, None), (LANGUAGES, "italian")]


@pytest.mark.parametrize(("languages", "language"), MODES)
@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_an_extra_value_is_written_as_the_rule_says(languages, language, value):
    expected = oracle_extra(value, languages, language)
    got = Texts(languages=languages, language=language).extra(value)
    assert orjson.dumps(got) == orjson.dumps(expected)


@pytest.mark.parametrize(("languages", "language"), MODES)
@settings(max_examples=200, deadline=None)
@given(extras=st.one_of(st.dictionaries(names, json_values, max_size=6), json_values))
def test_merged_extras_are_what_the_rule_keeps_in_the_stored_order(languages, language, extras):
    feed = ProductFeed(languages=languages, language=language)
    standard = {"id": 1, "name": "n"}
    expected = oracle_merge(dict(standard), extras, ProductFeed.standard_attributes, languages, language)
    # Twice: the second time the attribute names are answered from the feed's memo.
    for _ in range(2):
        got = feed.merge_extras(dict(standard), extras)
        assert orjson.dumps(got) == orjson.dumps(expected)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_decode_json_reads_a_json_text_as_the_json_field_does(value):
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: written by hand instead
        text = str(value)
    field = FastJSONField()
    assert decode_json(text) == field.from_db_value(text, None, None) or (
        decode_json(text) != decode_json(text)  # NaN is never equal to itself
    )


@pytest.mark.parametrize("text", ["not json", '{"a": 1', "18446744073709551616", "[1, 2]", "null", '"x"', None])
def test_decode_json_keeps_what_the_json_field_keeps_for_odd_texts(text):
    assert decode_json(text) == FastJSONField().from_db_value(text, None, None)


@pytest.mark.django_db
@pytest.mark.parametrize("feed_class", [ProductFeed, PageFeed])
def test_attributes_read_as_text_are_the_stored_attributes(feed_class):
    attributes = {"color_names": ["a", "b"], "stock": 2**62, "avg": 0.1, "flag": True, "nested": {"x": [1, None]}}
    if feed_class is ProductFeed:
        ProductFactory(attributes=attributes)
        stored = Product.objects.values_list("attributes", flat=True).get()
    else:
        from shop.models import Page

        Page.objects.create(id=5, type="cms", url="https://shop.example/p", title="t", text="t", attributes=attributes)
        stored = Page.objects.values_list("attributes", flat=True).get()
    feed = feed_class()
    [row] = feed.selection().values(*feed.read_columns())
    assert decode_json(row["attributes_json"]) == stored == attributes


@pytest.mark.django_db
def test_a_plain_product_page_query_converts_neither_its_json_nor_its_time_per_row():
    from django.db import connection

    feed = ProductFeed()
    query = feed.selection().values(*feed.read_columns()).query
    compiler = query.get_compiler(connection=connection)
    compiler.setup_query()
    fields = [column for column, *_ in compiler.select[: compiler.col_count]]
    names = list(query.selected)  # the select's order, as Django's values() reads it
    converted = {names[i] for i in compiler.get_converters(fields)}
    assert {"attributes_json", "created_unix"}.isdisjoint(converted)
    if connection.vendor == "postgresql":
        assert converted == set()  # Django hands the rows over untouched
