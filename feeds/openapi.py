"""The OpenAPI 3.1 description of the feed endpoints, served public at `GET /openapi.json`.

`build_document()` builds it for the live settings (`CLERK_FEED_MAX_LIMIT`, `CLERK_LANGUAGES`):
object schemas from Clerk's object table (`shop.clerk_objects`, kinds as `feeds.rules` checks
them), the feeds and paths from `feeds.registry`, error bodies as `feeds.errors` renders them.
`openapi_document` is the view. Why it is written rather than generated: docs/feeds.md.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from feeds.registry import FEEDS, SINGLE_FEED
from feeds.rules import feed_kind
from shop.clerk_objects import ATTRIBUTE_NAME_RE, FEED_TYPES, OBJECTS, ORDER_LINE, feed_fields

OPENAPI_VERSION = "3.1.0"
TOKEN_HEADER = "X-Clerk-Authorization"
REFUSED_METHODS = ("post", "put", "patch", "delete")

# Each feed kind (`feeds.rules.feed_kind`) as JSON Schema ("text" depends on the languages,
# "order_lines" is built from `ORDER_LINE`).
_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "id": {"type": "integer", "format": "int64"},
    "int": {"type": "integer", "format": "int64"},
    "time": {"type": "integer", "format": "int64", "description": "unix time, whole seconds"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "ids": {"type": "array", "items": {"type": "integer", "format": "int64"}},
}
# An order line's quantity is a plain integer (no 64-bit format).
_LINE_SCHEMAS: dict[str, dict[str, Any]] = {**_KIND_SCHEMAS, "int": {"type": "integer"}}


def _order_lines_schema() -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": [name for name, f in ORDER_LINE.items() if f.required],
            "properties": {name: dict(_LINE_SCHEMAS[feed_kind(f)]) for name, f in ORDER_LINE.items()},
            "additionalProperties": False,
        },
    }


_SCALAR = {"type": ["string", "number", "boolean"]}


def _ref(section: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{section}/{name}"}


def _schema_name(type_name: str) -> str:
    return {
        "products": "Product",
        "categories": "Category",
        "orders": "Order",
        "customers": "Customer",
        "pages": "Page",
    }[type_name]


# --- schemas -------------------------------------------------------------------------------------
def _text_schema(languages: tuple[str, ...]) -> dict[str, Any]:
    if not languages:
        return {"type": "string"}
    return {
        "oneOf": [
            {"type": "string", "description": "with `language`: the text in that language"},
            _ref("schemas", "Texts"),
        ]
    }


def _field_schema(kind: str, languages: tuple[str, ...]) -> dict[str, Any]:
    if kind == "text":
        return _text_schema(languages)
    if kind == "order_lines":
        return _order_lines_schema()
    return dict(_KIND_SCHEMAS[kind])


def _object_schema(type_name: str, languages: tuple[str, ...]) -> dict[str, Any]:
    fields = feed_fields(type_name)
    required = [name for name, f in fields.items() if f.required]
    optional = [name for name, f in fields.items() if not f.required]
    properties = {name: _field_schema(feed_kind(fields[name]), languages) for name in (*required, *optional)}
    schema: dict[str, Any] = {
        "type": "object",
        "required": required,
        "properties": properties,
        # Clerk ignores attributes with other names; the feeds never send one.
        "propertyNames": {"pattern": ATTRIBUTE_NAME_RE.pattern},
    }
    if OBJECTS[type_name].closed:
        schema["additionalProperties"] = False  # Clerk refuses any other attribute on an order
        schema["description"] = "An order: only these attributes, never others."
    else:
        schema["additionalProperties"] = _ref("schemas", "ExtraAttribute")
    return schema


def _schemas(languages: tuple[str, ...]) -> dict[str, Any]:
    schemas: dict[str, Any] = {_schema_name(name): _object_schema(name, languages) for name in FEED_TYPES}
    extra: list[dict[str, Any]] = [_SCALAR, {"type": "array", "items": _SCALAR}]
    if languages:
        schemas["Texts"] = {
            "type": "object",
            "description": "One text per configured language (CLERK_LANGUAGES), every key present.",
            "required": list(languages),
            "properties": {language: {"type": "string"} for language in languages},
            "additionalProperties": False,
        }
        extra.append(_ref("schemas", "Texts"))
    schemas["ExtraAttribute"] = {
        "description": "An extra attribute: a string, number, boolean or an array of them"
        + (", or a text per language." if languages else "."),
        "oneOf": extra,
    }
    schemas["SingleFeed"] = {
        "type": "object",
        "required": [*FEEDS, "config"],
        "properties": {
            **{name: {"type": "array", "items": _ref("schemas", _schema_name(name))} for name in FEEDS},
            "config": {
                "type": "object",
                "required": ["created", "strict"],
                "properties": {
                    "created": {
                        "type": "integer",
                        "description": "unix time of the newest change in the data (Clerk skips an unchanged feed)",
                    },
                    "strict": {"type": "boolean", "const": False},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "pattern": "^[a-z0-9_]+$", "description": "a stable snake_case code"},
            "detail": {"type": "string", "description": "a sentence for humans"},
        },
        "additionalProperties": False,
    }
    return schemas


# --- parameters, responses, security -------------------------------------------------------------
def _parameters(languages: tuple[str, ...]) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "limit": {
            "name": "limit",
            "in": "query",
            "description": "Objects per page. Without it the whole feed is streamed. Above the maximum "
            "it is a 400, never silently lowered.",
            "schema": {"type": "integer", "minimum": 1, "maximum": settings.CLERK_FEED_MAX_LIMIT},
        },
        "offset": {
            "name": "offset",
            "in": "query",
            "description": "Index of the page's first object (primary-key order). Past the end the "
            "answer is [] (the importer's stop signal). Without `limit`, a page of the default size.",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        },
        "modified_after": {
            "name": "modified_after",
            "in": "query",
            "description": "Only objects whose feed-relevant data changed within this many days.",
            "schema": {"type": "integer", "minimum": 0},
        },
    }
    if languages:
        parameters["language"] = {
            "name": "language",
            "in": "query",
            "description": "Write every text in this one language instead of one text per language.",
            "schema": {"type": "string", "enum": list(languages)},
        }
    return parameters


def _error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("schemas", "Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _responses() -> dict[str, Any]:
    retry_after = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return {
        "BadParameter": _error("A parameter is invalid (e.g. `limit` above the maximum)."),
        "NotAuthenticated": _error(
            "Credentials missing, malformed or refused.",
            headers={"WWW-Authenticate": {"description": "the schemes to satisfy", "schema": {"type": "string"}}},
        ),
        "HTTPSRequired": _error("Plain HTTP: feeds are served over HTTPS only (never redirected)."),
        "FeedNotFound": _error("There is no such feed."),
        "MethodNotAllowed": _error(
            "Feeds answer GET and HEAD only.",
            headers={"Allow": {"description": "GET, HEAD", "schema": {"type": "string"}}},
        ),
        "TooManyRequests": _error("Too many failed attempts from this address.", headers=retry_after),
        "ClerkUnavailable": _error("Clerk's token service cannot be reached; retry later.", headers=retry_after),
    }


_GET_ERRORS = {
    "400": "BadParameter",
    "401": "NotAuthenticated",
    "403": "HTTPSRequired",
    "429": "TooManyRequests",
    "503": "ClerkUnavailable",
}


def _security_schemes() -> dict[str, Any]:
    return {
        "clerkToken": {
            "type": "apiKey",
            "in": "header",
            "name": TOKEN_HEADER,
            "description": "`Bearer <token>`: a token issued by Clerk, verified with Clerk's token service.",
        },
        "basicAuth": {
            "type": "http",
            "scheme": "basic",
            "description": "Required in addition to a Clerk credential when the shop sets CLERK_FEED_BASIC_AUTH.",
        },
        "feedSalt": {"type": "apiKey", "in": "query", "name": "salt", "description": "The single feed only: any salt."},
        "feedHash": {
            "type": "apiKey",
            "in": "query",
            "name": "hash",
            "description": "The single feed only: SHA-512 hex of salt + private key + floor(unix time / 100); "
            "the current or previous 100-second window.",
        },
    }


def _security(*, single_feed: bool) -> list[dict[str, list]]:
    alternatives = [{"clerkToken": []}]
    if single_feed:
        alternatives.append({"feedSalt": [], "feedHash": []})
    if settings.CLERK_FEED_BASIC_AUTH:
        alternatives = [{**alternative, "basicAuth": []} for alternative in alternatives]
    return alternatives


# --- paths ---------------------------------------------------------------------------------------
def _operations(
    *, summary: str, ok: dict[str, Any], parameters: list[str], single_feed: bool, operation_id: str
) -> dict[str, Any]:
    errors = {status: _ref("responses", name) for status, name in _GET_ERRORS.items()}
    common = {
        "parameters": [_ref("parameters", name) for name in parameters],
        "security": _security(single_feed=single_feed),
    }
    path: dict[str, Any] = {
        "get": {"operationId": operation_id, "summary": summary, **common, "responses": {"200": ok, **errors}},
        "head": {
            "operationId": f"{operation_id}_head",
            "summary": f"{summary} (headers only)",
            **common,
            "responses": {"200": {"description": "The GET's headers, no body."}, **errors},
        },
    }
    for method in REFUSED_METHODS:
        # Credentials are checked before the method: without them the answer is 401, not 405.
        path[method] = {
            "operationId": f"{operation_id}_{method}",
            "summary": "Not allowed: feeds answer GET and HEAD only.",
            "security": common["security"],
            "responses": {
                "405": _ref("responses", "MethodNotAllowed"),
                **{status: _ref("responses", name) for status, name in _GET_ERRORS.items() if status != "400"},
            },
        }
    return path


def _paths(languages: tuple[str, ...]) -> dict[str, Any]:
    query = ["limit", "offset", "modified_after", *(["language"] if languages else [])]
    no_store = {"Cache-Control": {"description": "no-store", "schema": {"type": "string"}}}
    paths: dict[str, Any] = {}
    for name in FEEDS:
        item = _ref("schemas", _schema_name(name))
        array = {"type": "array", "items": item}
        ndjson = {"schema": item, "x-description": "one object per line, each line ending in a newline"}
        paths[f"/feed/{name}.json"] = _operations(
            summary=f"The {name} feed as a JSON array (NDJSON with Accept: application/x-ndjson).",
            ok={
                "description": f"The {name}, in primary-key order.",
                "headers": no_store,
                "content": {"application/json": {"schema": array}, "application/x-ndjson": ndjson},
            },
            parameters=query,
            single_feed=False,
            operation_id=f"{name}_json",
        )
        paths[f"/feed/{name}.ndjson"] = _operations(
            summary=f"The {name} feed as NDJSON: one object per line.",
            ok={
                "description": f"The {name}, in primary-key order, one per line.",
                "headers": no_store,
                "content": {"application/x-ndjson": ndjson},
            },
            parameters=query,
            single_feed=False,
            operation_id=f"{name}_ndjson",
        )
    paths[f"/feed/{SINGLE_FEED}.json"] = _operations(
        summary="The single feed: every type in one object, plus config. Never paged (limit or offset is a 400).",
        ok={
            "description": "Every feed in one JSON object.",
            "headers": no_store,
            "content": {"application/json": {"schema": _ref("schemas", "SingleFeed")}},
        },
        parameters=[p for p in query if p not in ("limit", "offset")],
        single_feed=True,
        operation_id="single_feed",
    )
    paths["/feed/{name}"] = {
        "get": {
            "operationId": "unknown_feed",
            "summary": "Any other path under /feed/: not a feed (answered after authentication).",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "security": _security(single_feed=False),
            "responses": {
                "404": _ref("responses", "FeedNotFound"),
                **{status: _ref("responses", n) for status, n in _GET_ERRORS.items() if status != "400"},
            },
        }
    }
    return paths


def build_document() -> dict[str, Any]:
    """The OpenAPI document for the current settings."""
    languages = tuple(settings.CLERK_LANGUAGES)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "clerkfeeds",
            "version": "1.0.0",
            "description": "Clerk.io data feeds of the shop: products, categories, orders, customers, "
            "pages, and the single feed. Read by Clerk's importer over HTTPS, page by page.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": _paths(languages),
        "components": {
            "schemas": _schemas(languages),
            "parameters": _parameters(languages),
            "responses": _responses(),
            "securitySchemes": _security_schemes(),
        },
    }


@require_safe
def openapi_document(request: HttpRequest) -> HttpResponse:
    """`GET /openapi.json`: the document, public (it holds no data)."""
    return HttpResponse(orjson.dumps(build_document()), content_type="application/vnd.oai.openapi+json")
