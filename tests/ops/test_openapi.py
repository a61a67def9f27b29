"""The OpenAPI document: valid, public without data, and true to the endpoints' real behaviour."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import orjson
import pytest
from django.test import Client
from django.utils import timezone
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import TEST_TOKEN, HTTPSClient
from tests.factories import (
    CategoryFactory,
    ConsentRecordFactory,
    CustomerFactory,
    OrderFactory,
    PageFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

BASE = "urn:clerkfeeds:openapi"
METHODS = ("get", "head", "post", "put", "patch", "delete")


def fetch_document() -> dict:
    response = Client().get("/openapi.json", secure=True)  # no credentials at all
    assert response.status_code == 200
    return orjson.loads(response.content)


def validator(document: dict, pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` in the document, its $refs resolved within it."""
    registry = Registry().with_resource(BASE, Resource(contents=document, specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{BASE}#{pointer}"}, registry=registry)


def escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def documented_statuses(document: dict, path: str, method: str) -> set[int]:
    return {int(status) for status in document["paths"][path][method]["responses"]}


def concrete_paths(document: dict) -> list[str]:
    return [path for path in document["paths"] if "{" not in path]


@pytest.fixture
def shop():
    root = CategoryFactory()
    CategoryFactory(parent=root, translations={"italian": {"name": "Scarpe"}})
    ProductFactory(
        categories=[root],
        brand="Acme",
        list_price=Decimal("25.00"),
        index=False,
        attributes={
            "color": "red",
            "sizes": [38, 39],
            "stock": 3,
            "on_sale": True,
            "material": {"italian": "lana", "english": "wool"},
        },
        translations={"english": {"name": "Shoe"}},
    )
    ProductFactory()
    PageFactory(attributes={"author": "Anna"})
    customer = CustomerFactory(zip="20100", gender="f", age=41, is_b2b=False)
    ConsentRecordFactory(customer=customer, purpose="marketing")
    OrderFactory(customer=customer, lines=[(1, 2, Decimal("9.50")), (2, 1, Decimal("3"))])
    OrderFactory(customer=None, terms_accepted_at=timezone.now() - dt.timedelta(days=1))


def test_the_document_is_public_and_a_valid_openapi_3_1_description():
    document = fetch_document()

    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(concrete_paths(document)) == {
        *(
            f"/feed/{t}.{f}"
            for t in ("products", "categories", "orders", "customers", "pages")
            for f in ("json", "ndjson")
        ),
        "/feed/all.json",
    }


def test_the_document_holds_no_data(shop):
    text = Client().get("/openapi.json", secure=True).content.decode()

    assert "@example.com" not in text and "Customer " not in text and "Product " not in text


def test_the_document_describes_this_deployment(settings):
    settings.CLERK_FEED_MAX_LIMIT = 500
    settings.CLERK_LANGUAGES = ["italian", "english"]

    document = fetch_document()

    parameters = document["components"]["parameters"]
    assert parameters["limit"]["schema"]["maximum"] == 500
    assert parameters["language"]["schema"]["enum"] == ["italian", "english"]


@pytest.mark.parametrize("method", ["get", "head"])
def test_every_documented_feed_path_answers(shop, feed_client, method):
    document = fetch_document()

    for path in concrete_paths(document):
        response = feed_client.generic(method.upper(), path)
        assert response.status_code == 200, path
        assert 200 in documented_statuses(document, path, method)


def _error_of(document: dict, response) -> dict:
    body = orjson.loads(response.content)
    validator(document, "/components/schemas/Error").validate(body)
    return body


def test_bad_input_gets_exactly_the_documented_error_statuses(shop, feed_client, fake_clerk):
    document = fetch_document()
    anonymous, plain = HTTPSClient(), Client(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})

    for path in concrete_paths(document):
        seen = {
            feed_client.get(path, {"modified_after": "-1"}),  # 400
            anonymous.get(path),  # 401
            plain.get(path),  # 403: plain HTTP
        }
        for response in seen:
            assert response.status_code in documented_statuses(document, path, "get"), (path, response.status_code)
            _error_of(document, response)
        for method in ("post", "put", "patch", "delete"):
            refused = feed_client.generic(method.upper(), path)
            assert refused.status_code == 405
            assert refused.status_code in documented_statuses(document, path, method)
            assert refused["Allow"] == "GET, HEAD"
            _error_of(document, refused)

    unknown = feed_client.get("/feed/nothing.json")
    assert unknown.status_code in documented_statuses(document, "/feed/{name}", "get") and unknown.status_code == 404
    assert _error_of(document, unknown)["error"] == "feed_not_found"

    fake_clerk.behave("/token/verify", "error500")
    unavailable = HTTPSClient(headers={"X-Clerk-Authorization": "Bearer a-token-not-yet-verified"}).get(
        "/feed/products.json"
    )
    assert unavailable.status_code == 503 and unavailable.status_code in documented_statuses(
        document, "/feed/products.json", "get"
    )
    assert unavailable["Retry-After"]
    _error_of(document, unavailable)


def test_repeated_failures_get_the_documented_429(feed_client):
    document = fetch_document()
    guesser = HTTPSClient(headers={"X-Clerk-Authorization": "Bearer guessed"})

    statuses = [guesser.get("/feed/orders.json").status_code for _ in range(60)]

    assert statuses[0] == 401 and statuses[-1] == 429
    assert 429 in documented_statuses(document, "/feed/orders.json", "get")


@pytest.mark.parametrize("languages", [[], ["italian", "english"]], ids=["one-language", "multi-language"])
def test_real_feed_objects_validate_against_the_documented_schemas(shop, feed_client, settings, languages):
    settings.CLERK_LANGUAGES = languages
    document = fetch_document()

    for path in concrete_paths(document):
        response = feed_client.get(path)
        body = b"".join(response.streaming_content)
        pointer = f"/paths/{escape(path)}/get/responses/200/content"
        if path.endswith(".ndjson"):
            line_schema = validator(document, f"{pointer}/{escape('application/x-ndjson')}/schema")
            lines = body.decode().splitlines()
            assert lines, path
            for line in lines:
                line_schema.validate(orjson.loads(line))
        else:
            objects = orjson.loads(body)
            assert objects, path
            validator(document, f"{pointer}/{escape('application/json')}/schema").validate(objects)


@pytest.mark.parametrize(
    ("schema", "obj"),
    [
        (
            "Product",
            {
                "id": 1,
                "name": "n",
                "description": "",
                "price": 1.0,
                "image": "i",
                "url": "u",
                "categories": [],
                "created_at": 1,
                "brand": None,
            },
        ),
        (
            "Product",
            {
                "id": 1,
                "name": "n",
                "description": "",
                "price": 1.0,
                "image": "i",
                "url": "u",
                "categories": [],
                "created_at": 1,
                "bad-name": 1,
            },
        ),
        (
            "Product",
            {
                "id": "1",
                "name": "n",
                "description": "",
                "price": 1.0,
                "image": "i",
                "url": "u",
                "categories": [],
                "created_at": 1,
            },
        ),
        ("Order", {"id": 1, "products": [{"id": 1, "quantity": 1, "price": 2.0}], "time": 1, "note": "x"}),
        ("Order", {"id": 1, "products": [{"id": 1, "quantity": 1}], "time": 1}),
        ("Customer", {"id": 1, "name": "n", "subscribed": False}),
        ("Category", {"id": 1, "name": "n", "url": "u", "subcategories": [1.5]}),
    ],
)
def test_the_schemas_refuse_what_clerk_refuses(schema, obj):
    document = fetch_document()

    errors = list(validator(document, f"/components/schemas/{schema}").iter_errors(obj))

    assert errors, obj


def test_documented_operation_ids_are_unique():
    document = fetch_document()
    ids = [op["operationId"] for item in document["paths"].values() for m, op in item.items() if m in METHODS]

    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z_]+", i) for i in ids)
