"""The bare limit: the products feed as a plain WSGI app, no Django, psycopg 3 and orjson.

    gunicorn bench.bare_wsgi:application   (DATABASE_URL names the database)

`GET /products?limit=1000&after=<id>` returns the products with id > after, in id order, as a
JSON array of Clerk product objects (the same shape as the project's products feed: no nulls,
unix times, prices as numbers, extra attributes at the top level, `index: false` when hidden).
One keyset query for the page and one for the categories of its products: the least work any
implementation can do per page, so the project's crawl is measured against it. The crawler
passes the last id it saw as `after` (that is the bare app's only concession: it needs no
offset-to-key translation). No auth, no logging, no validation beyond ints: it is a yardstick,
not a service.
"""

from __future__ import annotations

import os
from collections import defaultdict
from urllib.parse import parse_qs

import orjson
import psycopg
from psycopg.types.json import set_json_loads

set_json_loads(orjson.loads)

PAGE_SQL = """
SELECT id, name, description, price::float8, list_price::float8, image, url, brand,
       extract(epoch FROM created_at)::bigint, index, attributes
FROM shop_product WHERE id > %s ORDER BY id LIMIT %s
"""
CATEGORIES_SQL = """
SELECT product_id, category_id FROM shop_productcategory
WHERE product_id = ANY(%s) ORDER BY product_id, category_id
"""

_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    """One connection per worker process, opened after the fork, reopened if it broke."""
    global _connection
    if _connection is None or _connection.closed or _connection.broken:
        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)
    return _connection


def page(after: int, limit: int) -> list[dict]:
    with connection().cursor() as cur:
        rows = cur.execute(PAGE_SQL, (after, limit)).fetchall()
        categories: dict[int, list[int]] = defaultdict(list)
        if rows:
            for product_id, category_id in cur.execute(CATEGORIES_SQL, ([r[0] for r in rows],)):
                categories[product_id].append(category_id)
    objects = []
    for pid, name, description, price, list_price, image, url, brand, created, index, attrs in rows:
        obj = dict(attrs) if attrs else {}
        obj.update(
            id=pid,
            name=name,
            description=description,
            price=price,
            image=image,
            url=url,
            categories=categories.get(pid, []),
            created_at=created,
        )
        if list_price is not None:
            obj["list_price"] = list_price
        if brand:
            obj["brand"] = brand
        if not index:
            obj["index"] = False
        objects.append(obj)
    return objects


def application(environ, start_response):
    if environ.get("PATH_INFO") != "/products":
        return _send(start_response, "404 Not Found", b'{"error":"not_found"}')
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        after = int(query.get("after", ["0"])[0])
        limit = int(query.get("limit", ["1000"])[0])
    except ValueError:
        return _send(start_response, "400 Bad Request", b'{"error":"bad_parameter"}')
    return _send(start_response, "200 OK", orjson.dumps(page(after, limit)))


def _send(start_response, status: str, body: bytes):
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
