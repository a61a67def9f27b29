"""Properties of the import over generated catalogues: exact round trip, and idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop.models import Page, Product, ProductCategory
from tests.shop.helpers import T0, import_shop, page_object, product_object, updated_times, write_json

pytestmark = pytest.mark.django_db

STANDARD = {
    "id",
    "name",
    "description",
    "price",
    "list_price",
    "image",
    "url",
    "categories",
    "created_at",
    "brand",
    "index",
    "updated_at",
    "type",
    "title",
    "text",
}
# Any text PostgreSQL can store: no NUL, no lone surrogate.
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
names = texts.filter(bool)
urls = st.from_regex(r"https://shop\.example/[a-z0-9/_-]{0,30}", fullmatch=True)
# Every price the columns hold, exactly, on every database (18 digits, 4 after the point).
prices = st.decimals(
    min_value=0, max_value=Decimal("99999999999999.9999"), places=4, allow_nan=False, allow_infinity=False
)
times = st.integers(min_value=0, max_value=T0)  # none from the future (refused)
attribute_names = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True).filter(lambda n: n not in STANDARD)
scalars = st.one_of(
    texts,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**52), max_value=2.0**52),
)
attribute_values = st.one_of(scalars, st.lists(scalars, max_size=4))


def translated(strategy):
    """A plain text, or a text per language."""
    return st.one_of(strategy, st.fixed_dictionaries({"italian": strategy, "english": strategy}))


@st.composite
def products(draw):
    ids = draw(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=5, unique=True))
    objects = []
    for pid in ids:
        obj = {
            "id": pid,
            "name": draw(translated(names)),
            "description": draw(translated(texts)),
            "price": draw(prices),
            "image": draw(translated(urls)),
            "url": draw(translated(urls)),
            "categories": sorted(draw(st.lists(st.integers(1, 50), unique=True, max_size=4))),
            "created_at": draw(times),
            "updated_at": draw(times),
            **draw(st.dictionaries(attribute_names, attribute_values, max_size=3)),
        }
        if draw(st.booleans()):
            obj["list_price"] = draw(prices)
        if draw(st.booleans()):
            obj["brand"] = draw(names)
        if draw(st.booleans()):
            obj["index"] = False
        objects.append(obj)
    return objects


def normalised(obj: dict) -> dict:
    """How a product reads back: numbers as stored (Decimal prices, floats for decimals)."""
    out = dict(obj)
    for key in ("price", "list_price"):
        if key in out:
            out[key] = Decimal(out[key])
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogue=products())
def test_any_valid_catalogue_round_trips_exactly_and_reimports_unchanged(tmp_path, catalogue):
    ProductCategory.objects.all().delete()
    Product.objects.all().delete()
    path = write_json(tmp_path / "p.json", catalogue)
    first = import_shop(path, "--type", "products")
    assert first.code == 0, first.stderr
    by_id = {p.id: product_object(p) for p in Product.objects.all()}
    assert by_id == {obj["id"]: normalised(obj) for obj in catalogue}
    times_before = updated_times()
    again = import_shop(path, "--type", "products")
    assert f"0 created, 0 updated, {len(catalogue)} unchanged" in again.stdout
    assert updated_times() == times_before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=translated(names), text=translated(texts), keywords=st.lists(texts, max_size=3))
def test_any_valid_page_round_trips_exactly(tmp_path, title, text, keywords):
    Page.objects.all().delete()
    page = {
        "id": 1,
        "type": "blog",
        "url": "https://shop.example/b/1",
        "title": title,
        "text": text,
        "keywords": keywords,
        "updated_at": 1_700_000_000,
    }
    assert import_shop(write_json(tmp_path / "pages.json", [page]), "--type", "pages").code == 0
    assert page_object(Page.objects.get()) == page


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("bad\x00name", "contains a NUL character, which cannot be stored"),
        ("bad\ud800name", "is not valid Unicode text (it holds a lone surrogate)"),
    ],
)
def test_text_the_database_cannot_store_is_refused_not_failed(tmp_path, value, reason):
    path = tmp_path / "p.ndjson"
    # JSON escapes (\u0000, \ud800), as a shop's exporter would send them.
    escaped = value.encode("unicode_escape").decode().replace("\\x00", "\\u0000")
    line = (
        '{"id": 1, "name": "ok", "description": "%s", "price": 1, "image": "https://s.example/i",'
        ' "url": "https://s.example/p", "categories": [], "created_at": 0}\n'
    )
    path.write_text(line % escaped, encoding="utf-8")
    run = import_shop(path, "--type", "products")
    assert run.code == 1
    assert f"description: {reason}" in run.stderr
    assert not Product.objects.exists()


def test_a_decimal_attribute_too_large_for_a_double_is_refused(tmp_path):
    line = (
        '{"id": 1, "name": "ok", "description": "", "price": 1, "image": "https://s.example/i",'
        ' "url": "https://s.example/p", "categories": [], "created_at": 0, "weight": 1.5e300}\n'
    )
    path = tmp_path / "p.ndjson"
    path.write_text(line)
    run = import_shop(path, "--type", "products")
    assert "weight: is too large for a decimal attribute" in run.stderr
