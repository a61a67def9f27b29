"""The validator of Clerk's object rules: it accepts Clerk's own examples and catches each breach."""

from __future__ import annotations

import copy

import pytest

from feeds.rules import TEXT_ATTRIBUTES, feed_errors, object_errors

PRODUCT = {
    "id": 135,
    "name": "Lightsaber",
    "description": "Antique Rebel Lightsaber",
    "price": 99995.95,
    "image": "https://galactic-empire-merch.com/images/a-r-lightsaber.jpg",
    "url": "https://galactic-empire-merch.com/antique-rebel-lightsaber",
    "brand": "Je'daii",
    "categories": [987, 654],
    "created_at": 1199145600,
    "color_names": ["Green", "Red"],
    "reviews_amount": 164,
    "reviews_avg": 4.8,
}
CATEGORY = {"id": 1, "name": "Imperial Goods", "subcategories": [42, 25], "url": "https://x/imperial-goods"}
ORDER = {
    "id": 123458,
    "customer": 789,
    "email": "vader@the-death-star.com",
    "products": [{"id": 456, "quantity": 1, "price": 200.00}, {"id": 789, "quantity": 2, "price": 120}],
    "time": 1389871120,
}
CUSTOMER = {
    "id": 165,
    "name": "Leia Organa",
    "email": "leia@royalty.org",
    "subscribed": False,
    "age": 19,
    "is_b2b": True,
}
PAGE = {"id": 1354, "type": "blog", "url": "https://x/p", "title": "New post", "text": "Body", "keywords": ["blog"]}
VALID = {"products": PRODUCT, "categories": CATEGORY, "orders": ORDER, "customers": CUSTOMER, "pages": PAGE}


@pytest.mark.parametrize("type_name", VALID)
def test_clerks_own_examples_are_valid(type_name):
    assert object_errors(type_name, VALID[type_name]) == []


def broken(type_name, **changes):
    obj = copy.deepcopy(VALID[type_name])
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return object_errors(type_name, obj)


@pytest.mark.parametrize(
    "type_name, changes, expected",
    [
        ("products", {"description": ...}, "required field 'description' is missing"),
        ("categories", {"subcategories": ...}, "required field 'subcategories' is missing"),
        ("orders", {"time": ...}, "required field 'time' is missing"),
        ("customers", {"subscribed": ...}, "required field 'subscribed' is missing"),
        ("pages", {"text": ...}, "required field 'text' is missing"),
        ("products", {"brand": None}, "brand is null"),
        ("products", {"color_names": ["Green", None]}, "color_names[1] is null"),
        ("products", {"label-mærke": "x"}, "attribute name 'label-mærke'"),
        ("products", {"color\n": "x"}, "attribute name 'color\\n'"),  # `$` alone would let it through
        ("products", {"id": "135"}, "'id' must be an integer"),
        ("products", {"id": True}, "'id' must be an integer"),
        ("products", {"price": "99.95"}, "'price' must be a number"),
        ("products", {"price": float("nan")}, "which JSON cannot carry"),
        ("products", {"created_at": 1199145600.5}, "'created_at' must be an integer unix time"),
        ("products", {"categories": [987, "654"]}, "categories[1] must be an integer id"),
        ("products", {"index": "false"}, "'index' must be true or false"),
        ("products", {"specs": {"weight": 3}}, "'specs' must be a string, number, boolean or array"),
        ("products", {"name": {"english": "Lightsaber"}}, "'name' must be a string"),
        ("orders", {"status": "paid"}, "orders may not carry attribute 'status'"),
        ("orders", {"customer": ""}, "'customer' must be an integer"),
        ("orders", {"products": [{"id": 1, "quantity": 1}]}, "products[0] lacks 'price'"),
        ("orders", {"products": [{"id": 1, "quantity": 1.5, "price": 2}]}, "products[0].quantity must be an integer"),
        ("orders", {"products": [{"id": 1, "quantity": 1, "price": 2, "sku": "x"}]}, "products[0] may not carry 'sku'"),
        ("customers", {"subscribed": "true"}, "'subscribed' must be true or false"),
        ("customers", {"is_b2b": "false"}, "'is_b2b' must be true or false"),
        ("customers", {"age": "19"}, "'age' must be an integer"),
        ("pages", {"url": 5}, "'url' must be a string"),
    ],
)
def test_each_breach_of_the_rules_is_reported(type_name, changes, expected):
    errors = broken(type_name, **changes)
    assert any(expected in error for error in errors), errors


def test_multi_language_texts_need_every_configured_language():
    languages = ["italian", "english"]
    product = copy.deepcopy(PRODUCT)
    for name in TEXT_ATTRIBUTES["products"]:
        product[name] = {"italian": f"{name} it", "english": f"{name} en"}
    assert object_errors("products", product, languages=languages) == []

    product["name"] = {"italian": "Spada laser"}
    assert any(
        "'name' must be an object with a text for each of" in e
        for e in object_errors("products", product, languages=languages)
    )
    product["name"] = {"italian": "Spada laser", "english": None}
    assert object_errors("products", product, languages=languages)
    product["name"] = "Lightsaber"
    assert object_errors("products", product, languages=languages)


def test_a_language_object_is_a_valid_extra_attribute_only_when_multi_language():
    languages = ["italian", "english"]
    page = dict(PAGE, teaser={"italian": "ciao", "english": "hello"})
    for name in ("url", "title", "text"):
        page[name] = {language: PAGE[name] for language in languages}
    assert object_errors("pages", page, languages=languages) == []
    plain = dict(PAGE, teaser={"italian": "ciao", "english": "hello"})
    assert object_errors("pages", plain) == [
        "'teaser' must be a string, number, boolean or array, not an object ({'italian': 'ciao', 'english': 'hello'})"
    ]


def test_text_attributes_per_type_follow_the_guide():
    assert TEXT_ATTRIBUTES == {
        "products": ("name", "description", "image", "url"),
        "categories": ("name", "url", "image", "description"),
        "orders": (),
        "customers": (),
        "pages": ("url", "title", "text", "image"),
    }


def test_feed_errors_reports_duplicate_ids_and_labels_objects():
    errors = feed_errors("categories", [CATEGORY, dict(CATEGORY, url=None), "nope"])
    assert "categories id 1: the id appears more than once in the feed" in errors
    assert "categories id 1: url is null (omit the key instead)" in errors
    assert any(e.startswith("categories[2]: a categories object must be a JSON object") for e in errors)


def test_unknown_type_is_a_programming_error():
    with pytest.raises(ValueError):
        object_errors("invoices", {})
