"""A Host outside ALLOWED_HOSTS under /feed/: 400 `bad_host` in JSON, one log line without the
header's value, no traceback. Elsewhere Django's own answer stays."""

from __future__ import annotations

import logging

import orjson
import pytest

from tests.security.conftest import FEED_PATHS, bearer, body

FOREIGN = "attacker-chosen.example"


def assert_bad_host(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    payload = orjson.loads(body(response))
    assert payload["error"] == "bad_host" and payload["detail"]
    assert FOREIGN.encode() not in body(response)


@pytest.mark.parametrize("path", FEED_PATHS)
def test_an_unknown_host_gets_a_json_400(https_client, feed_site, path, fake_clerk):
    response = https_client.get(path, headers={**bearer(), "Host": FOREIGN})
    assert_bad_host(response)
    assert fake_clerk.calls("/token/verify") == []


@pytest.mark.parametrize("host", [FOREIGN, f"{FOREIGN}:443", "localhost..", "bad host!", "[::2]"])
def test_every_foreign_spelling_is_refused_the_same_way(https_client, feed_site, host):
    response = https_client.get("/feed/products.json", headers={**bearer(), "Host": host})
    assert response.status_code == 400
    assert orjson.loads(body(response))["error"] == "bad_host"


def test_plain_http_with_an_unknown_host_is_still_json(plain_client, feed_site):
    assert_bad_host(plain_client.get("/feed/products.json", headers={"Host": FOREIGN}))


def test_head_and_post_are_refused_before_anything_else(https_client, feed_site):
    assert https_client.head("/feed/products.json", headers={"Host": FOREIGN}).status_code == 400
    assert_bad_host(https_client.post("/feed/products.json", headers={"Host": FOREIGN}))


def test_even_in_debug_the_answer_is_json(https_client, feed_site, settings):
    settings.DEBUG = True
    assert_bad_host(https_client.get("/feed/products.json", headers={"Host": FOREIGN}))


def test_one_log_line_without_the_host_and_no_traceback(https_client, feed_site, caplog):
    with caplog.at_level(logging.DEBUG):
        https_client.get("/feed/customers.json", headers={**bearer(), "Host": FOREIGN})
    assert [(r.name, r.levelname) for r in caplog.records] == [("feeds.middleware", "WARNING")]
    [record] = caplog.records
    assert record.exc_info is None and record.path == "/feed/customers.json"
    assert FOREIGN not in record.getMessage() and FOREIGN not in str(vars(record))


def test_failed_hosts_do_not_count_against_the_address(https_client, feed_site, fake_clerk):
    for _ in range(30):
        https_client.get("/feed/products.json", headers={"Host": FOREIGN})
    assert https_client.get("/feed/products.json", headers=bearer()).status_code == 200


def test_outside_the_feeds_django_answers_as_usual(https_client, db):
    response = https_client.get("/admin/login/", headers={"Host": FOREIGN})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_other_suspicious_requests_under_feed_are_json_too(https_client, settings, db):
    # The project's handler400 (clerkfeeds.urls), not the security layer: the real feeds only.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    query = "&".join(f"f{i}=1" for i in range(20))
    response = https_client.get(f"/feed/products.json?{query}", headers=bearer())
    assert response.status_code == 400
    assert orjson.loads(body(response)) == {"error": "bad_request", "detail": "The request could not be served."}
