"""The HTTP surface of the feeds: routes, methods, formats, errors, the signal and the log line."""

from __future__ import annotations

import contextlib
import logging
from wsgiref.util import setup_testing_defaults

import orjson
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from feeds import views
from feeds.signals import page_served
from tests.conftest import TEST_TOKEN
from tests.feeds.conftest import FEED_TYPES, body_of, get_json

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/feed/invoices.json",
        "/feed/invoices.ndjson",
        "/feed/products.xml",
        "/feed/products",
        "/feed/",
        "/feed/all.ndjson",
        "/feed/a/b.json",
    ],
)
def test_unknown_feed_is_a_json_404(feed_client, path):
    response = feed_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "feed_not_found"
    assert response.json()["detail"]


def test_unknown_type_404_names_the_feeds(feed_client):
    response = feed_client.get("/feed/invoices.json")
    assert response.json() == {
        "error": "feed_not_found",
        "detail": "There is no feed named 'invoices'; the feeds are products, categories, orders, customers, pages, all.",
    }


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("path", ["/feed/products.json", "/feed/orders.ndjson", "/feed/all.json"])
def test_methods_other_than_get_and_head_are_a_json_405_with_allow(feed_client, method, path):
    response = getattr(feed_client, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {"error": "method_not_allowed", "detail": "Feeds answer GET and HEAD only."}


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/feed/products.json", "application/json"),
        ("/feed/pages.ndjson", "application/x-ndjson"),
        ("/feed/all.json", "application/json"),
    ],
)
def test_head_answers_headers_without_reading_the_feed(feed_client, shop, path, content_type):
    with CaptureQueriesContext(connection) as queries:
        response = feed_client.head(path)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert "Content-Length" not in response
    assert b"".join(response.streaming_content) == b""
    assert not any("shop_" in q["sql"] for q in queries.captured_queries)


def test_head_still_validates_the_query(feed_client):
    assert feed_client.head("/feed/products.json?limit=0").status_code == 400
    assert feed_client.head("/feed/nope.json").status_code == 404


def test_view_returns_a_streaming_response_with_private_no_store_headers(feed_client, shop):
    response = feed_client.get("/feed/customers.json")
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert "Accept" in response["Vary"]


def test_accept_ndjson_on_the_json_url_gives_ndjson(feed_client, shop):
    response = feed_client.get("/feed/pages.json?limit=5", headers={"Accept": "application/x-ndjson"})
    assert response["Content-Type"] == "application/x-ndjson"
    lines = body_of(response).splitlines()
    assert [orjson.loads(line) for line in lines] == get_json(feed_client, "/feed/pages.json?limit=5")


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "text/html", "application/json, application/x-ndjson;q=0.5"]
)
def test_other_accept_headers_keep_json(feed_client, shop, accept):
    response = feed_client.get("/feed/pages.json", headers={"Accept": accept})
    assert response["Content-Type"] == "application/json"
    assert isinstance(orjson.loads(body_of(response)), list)


def test_feed_view_keeps_drfs_default_security_classes():
    assert issubclass(views.FeedView, APIView)
    for attribute in ("authentication_classes", "permission_classes", "throttle_classes"):
        assert attribute not in vars(views.FeedView)
        assert getattr(views.FeedView, attribute) == getattr(api_settings, f"DEFAULT_{attribute.upper()}")


def test_page_served_signal_after_the_last_byte(feed_client, shop):
    received = []
    page_served.connect(lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="t-signal")
    try:
        response = feed_client.get("/feed/products.json?limit=7&offset=14")
        assert not received  # nothing before the body is produced
        body = body_of(response)
    finally:
        page_served.disconnect(dispatch_uid="t-signal")
    [kw] = received
    assert kw["feed"] == "products" and kw["fmt"] == "json"
    assert (kw["offset"], kw["limit"], kw["rows"], kw["bytes"]) == (14, 7, 7, len(body))
    assert kw["outcome"] == "ok" and kw["duration"] >= 0 and kw["client"]
    assert kw["params"] == {"limit": 7, "offset": 14, "modified_after": None, "language": None}


class _WSGIServer:
    """Serves one request the way a WSGI server does: iterate the body, then (separately) close it.

    Django's test client closes a streamed response the moment its body is read; a real server
    writes the body's end (the terminating chunk) between the two, which is what is checked here.
    """

    def __init__(self, path: str, query: str = ""):
        self.environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "HTTP_X_CLERK_AUTHORIZATION": f"Bearer {TEST_TOKEN}",
            "wsgi.url_scheme": "https",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "443",
            "HTTP_HOST": "testserver",
        }
        setup_testing_defaults(self.environ)

    def start(self):
        self.statuses = []
        with _test_transaction_kept(request_started):
            return WSGIHandler()(self.environ, lambda status, headers, exc_info=None: self.statuses.append(status))

    @staticmethod
    def close(body) -> None:
        with _test_transaction_kept(request_finished):
            body.close()


@contextlib.contextmanager
def _test_transaction_kept(signal):
    """As Django's test client does: the request's start and end must not close the connection
    that holds the test's transaction."""
    signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        signal.connect(close_old_connections)


def test_the_page_is_reported_when_the_server_closes_it_not_before_its_end_is_written(shop, caplog):
    received = []
    page_served.connect(lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="t-close")
    server = _WSGIServer("/feed/products.json", "limit=7&offset=14")
    try:
        with caplog.at_level(logging.INFO, logger="feeds.access"):
            body = server.start()
            content = b"".join(body)
            # Every byte produced, the iterator exhausted: the server now writes the body's end.
            assert not received
            assert not [r for r in caplog.records if r.name == "feeds.access"]
            server.close(body)
    finally:
        page_served.disconnect(dispatch_uid="t-close")
    assert server.statuses == ["200 OK"]
    [kw] = received
    assert (kw["offset"], kw["limit"], kw["rows"], kw["bytes"], kw["outcome"]) == (14, 7, 7, len(content), "ok")
    [record] = [r for r in caplog.records if r.name == "feeds.access"]
    assert (record.rows, record.outcome) == (7, "ok")


def test_a_page_the_server_abandons_before_its_end_is_reported_failed(shop):
    received = []
    page_served.connect(lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="t-abandon")
    server = _WSGIServer("/feed/products.json", "limit=7&offset=0")
    try:
        body = server.start()
        server.close(body)  # the client went away before the first chunk was written
        server.close(body)  # a second close reports nothing more
    finally:
        page_served.disconnect(dispatch_uid="t-abandon")
    [kw] = received
    assert kw["outcome"] == "failed" and kw["bytes"] == 0


def test_a_failing_receiver_never_breaks_the_feed(feed_client, shop):
    def boom(sender, **kwargs):
        raise RuntimeError("observer bug")

    page_served.connect(boom, weak=False, dispatch_uid="t-boom")
    try:
        assert len(get_json(feed_client, "/feed/pages.json")) == len(shop.eligible["pages"])
    finally:
        page_served.disconnect(dispatch_uid="t-boom")


def test_one_access_log_line_per_page_without_personal_data(feed_client, shop, caplog):
    with caplog.at_level(logging.INFO, logger="feeds.access"):
        body = body_of(feed_client.get("/feed/customers.json?limit=10"))
    [record] = [r for r in caplog.records if r.name == "feeds.access"]
    assert record.getMessage() == "feed page served"
    assert (record.feed, record.fmt, record.offset, record.limit, record.rows, record.bytes, record.outcome) == (
        "customers",
        "json",
        0,
        10,
        10,
        len(body),
        "ok",
    )
    assert record.duration_ms >= 0 and record.client
    logged = " ".join(str(v) for v in vars(record).values())
    for customer in orjson.loads(body):
        assert customer["email"] not in logged and customer["name"] not in logged
    assert "Bearer" not in logged


def test_client_identity_prefers_the_security_layers_id():
    request = RequestFactory().get("/feed/products.json", REMOTE_ADDR="10.1.2.3")
    assert views.client_identity(request) == "10.1.2.3"
    request.clerk_client_id = "store-42"
    assert views.client_identity(request) == "store-42"


def test_django_404_and_500_pages_are_json_under_feed():
    factory = RequestFactory()
    not_found = views.page_not_found(factory.get("/feed/x"), Exception("nope"))
    assert (not_found.status_code, orjson.loads(not_found.content)["error"]) == (404, "feed_not_found")
    error = views.server_error(factory.get("/feed/products.json"))
    assert error.status_code == 500
    assert orjson.loads(error.content) == {
        "error": "server_error",
        "detail": "The feed could not be served; try again later.",
    }
    # Elsewhere Django's own pages stay.
    assert views.server_error(factory.get("/admin/"))["Content-Type"].startswith("text/html")
    assert views.page_not_found(factory.get("/elsewhere"), Exception())["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_json_and_ndjson_urls_serve_the_same_objects(feed_client, shop, feed):
    ndjson = [orjson.loads(line) for line in body_of(feed_client.get(f"/feed/{feed}.ndjson")).splitlines()]
    assert ndjson == get_json(feed_client, f"/feed/{feed}.json")
