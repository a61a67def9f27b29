"""Streaming: chunked, one batch at a time, and a failure mid-stream never looks like a feed."""

from __future__ import annotations

import json

import orjson
import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from feeds import encoding, pagination
from feeds.params import FeedParams
from feeds.signals import page_served
from feeds.stream import feed_chunks
from shop.models import Order, Product

pytestmark = pytest.mark.django_db


def break_row_source_after(monkeypatch, batches: int, *, model=None):
    """Make the keyset reader fail after `batches` batches (of `model`'s feed, or any)."""
    real = pagination.keyset_batches

    def failing(queryset, **kwargs):
        served = 0
        for batch in real(queryset, **kwargs):
            if model is None or queryset.model is model:
                if served == batches:
                    raise DatabaseError("connection to the database lost")
                served += 1
            yield batch

    monkeypatch.setattr(pagination, "keyset_batches", failing)


def read_until_failure(response) -> bytes:
    assert response.status_code == 200
    body = bytearray()
    with pytest.raises(DatabaseError):
        for chunk in response.streaming_content:
            body += chunk
    return bytes(body)


def assert_not_json(body: bytes):
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    with pytest.raises(ValueError):
        json.loads(body)


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(pagination, "BATCH_SIZE", 5)
    monkeypatch.setattr(encoding, "CHUNK_SIZE", 200)


def test_failure_mid_json_stream_leaves_a_body_that_is_not_json(feed_client, shop, small_batches, monkeypatch):
    break_row_source_after(monkeypatch, 3)
    body = read_until_failure(feed_client.get("/feed/products.json"))
    assert body.startswith(b"[{")  # some objects went out before the failure...
    assert_not_json(body)  # ...but never a complete array
    assert body.endswith(encoding.POISON)


def test_failure_mid_ndjson_stream_leaves_an_unterminated_invalid_last_line(
    feed_client, shop, small_batches, monkeypatch
):
    break_row_source_after(monkeypatch, 3)
    body = read_until_failure(feed_client.get("/feed/products.ndjson"))
    lines = body.split(b"\n")
    assert len(lines) > 3
    assert not body.endswith(b"\n")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[-1])


def test_failure_mid_paged_stream_leaves_no_array(feed_client, shop, small_batches, monkeypatch):
    break_row_source_after(monkeypatch, 1)
    body = read_until_failure(feed_client.get("/feed/products.json?limit=20&offset=5"))
    assert_not_json(body)


def test_failure_mid_single_feed_leaves_a_body_that_is_not_json(feed_client, shop, small_batches, monkeypatch):
    break_row_source_after(monkeypatch, 2, model=Order)
    body = read_until_failure(feed_client.get("/feed/all.json"))
    assert b'"products":[' in body and b'"orders":[' in body
    assert b'"config"' not in body
    assert_not_json(body)


def test_failure_mid_stream_reports_a_failed_page(feed_client, shop, small_batches, monkeypatch):
    served = []
    page_served.connect(lambda sender, **kw: served.append(kw), weak=False, dispatch_uid="t-failed")
    try:
        break_row_source_after(monkeypatch, 1)
        body = read_until_failure(feed_client.get("/feed/products.json?limit=20&offset=0"))
    finally:
        page_served.disconnect(dispatch_uid="t-failed")
    [kw] = served
    assert kw["outcome"] == "failed"
    assert kw["bytes"] == len(body) and 0 < kw["rows"] < 20


def test_failed_page_leaves_no_cursor_for_the_next_page(shop, small_batches, monkeypatch):
    params = FeedParams(limit=20)
    break_row_source_after(monkeypatch, 1)
    with pytest.raises(DatabaseError):
        b"".join(feed_chunks("products", params=params, client="c"))
    assert pagination.Cursors(feed="products", walk=params.walk(), client="c").get(20) is None
    monkeypatch.undo()
    b"".join(feed_chunks("products", params=params, client="c"))
    assert pagination.Cursors(feed="products", walk=params.walk(), client="c").get(20) == shop.eligible["products"][19]


def test_failure_before_the_first_byte_is_a_json_500_not_a_broken_200(feed_client, shop, monkeypatch):
    break_row_source_after(monkeypatch, 0)
    feed_client.raise_request_exception = False
    response = feed_client.get("/feed/products.json")
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "detail": "The feed could not be served; try again later."}


def test_whole_feed_is_read_one_batch_at_a_time(shop, monkeypatch):
    monkeypatch.setattr(pagination, "BATCH_SIZE", 5)
    monkeypatch.setattr(encoding, "CHUNK_SIZE", 1)
    body = bytearray()
    with CaptureQueriesContext(connection) as queries:
        chunks = feed_chunks("pages", params=FeedParams())
        assert len(queries) == 1  # the first batch is read before the first byte
        for chunk in chunks:
            body += chunk
            # Never more than one batch read ahead of what has been written: constant memory.
            assert 5 * len(queries) - body.count(b'"id":') <= 5
    assert len(queries) == len(shop.eligible["pages"]) // 5 + 1
    assert len(orjson.loads(bytes(body))) == len(shop.eligible["pages"])


def test_chunks_are_coalesced_to_the_chunk_size(shop, monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_SIZE", 1024)
    chunks = list(feed_chunks("products", params=FeedParams()))
    biggest_object = max(len(orjson.dumps(o)) for o in orjson.loads(b"".join(chunks)))
    assert len(chunks) > 2
    assert all(1024 <= len(c) < 1024 + biggest_object + 2 for c in chunks[:-1])


def test_feed_chunks_counts_rows_and_bytes(shop):
    chunks = feed_chunks("customers", params=FeedParams(), fmt="ndjson")
    body = b"".join(chunks)
    assert chunks.rows == len(shop.eligible["customers"]) == body.count(b"\n")
    assert chunks.bytes == len(body)
    assert chunks.content_type == "application/x-ndjson"


def test_feed_chunks_refuses_what_the_single_feed_cannot_be(shop):
    with pytest.raises(ValueError):
        feed_chunks("all", params=FeedParams(), fmt="ndjson")
    with pytest.raises(ValueError):
        feed_chunks("all", params=FeedParams(limit=5))
    with pytest.raises(ValueError):
        feed_chunks("products", params=FeedParams(), fmt="xml")


def test_feed_chunks_equals_the_http_feed(feed_client, shop):
    from tests.feeds.conftest import body_of

    for name in ("products", "orders", "all"):
        http = body_of(feed_client.get(f"/feed/{name}.json"))
        direct = b"".join(feed_chunks(name, params=FeedParams()))
        assert orjson.loads(direct) == orjson.loads(http)


def test_product_deleted_between_pages_is_not_an_error(shop):
    first = orjson.loads(b"".join(feed_chunks("products", params=FeedParams(limit=5), client="c")))
    Product.objects.filter(id=first[-1]["id"]).delete()  # the cursor's own row disappears
    second = orjson.loads(b"".join(feed_chunks("products", params=FeedParams(limit=5, offset=5), client="c")))
    assert [p["id"] for p in second] == shop.eligible["products"][5:10]
