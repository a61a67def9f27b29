"""Plain HTTP is refused with 403 JSON (never redirected); HTTPS behind a trusted proxy; HSTS."""

from __future__ import annotations

import orjson
import pytest

from tests.security.conftest import FEED_PATHS, MARKER, VERIFY, bearer, body

pytestmark = pytest.mark.usefixtures("feed_site")


def assert_https_required(response) -> None:
    assert response.status_code == 403
    assert "Location" not in response
    assert orjson.loads(body(response))["error"] == "https_required"
    assert MARKER not in body(response)


@pytest.mark.parametrize("path", FEED_PATHS)
def test_plain_http_is_403_without_token(plain_client, fake_clerk, path):
    assert_https_required(plain_client.get(path))


@pytest.mark.parametrize("path", FEED_PATHS)
def test_plain_http_is_403_with_valid_token_and_clerk_is_not_asked(plain_client, fake_clerk, path):
    assert_https_required(plain_client.get(path, headers=bearer()))
    assert fake_clerk.calls(VERIFY) == []


def test_plain_http_is_403_even_with_ssl_redirect_on(plain_client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert_https_required(plain_client.get("/feed/products.json", headers=bearer()))


def test_plain_http_with_salt_and_hash_is_403(plain_client):
    assert_https_required(plain_client.get("/feed/all.json", {"salt": "s", "hash": "0" * 128}))


def test_forwarded_proto_is_ignored_without_a_trusted_proxy(plain_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    response = plain_client.get("/feed/products.json", headers={**bearer(), "X-Forwarded-Proto": "https"})
    assert_https_required(response)


def test_forwarded_proto_https_is_trusted_behind_the_proxy(plain_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = plain_client.get("/feed/products.json", headers={**bearer(), "X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert MARKER in body(response)


def test_forwarded_proto_http_behind_the_proxy_is_403(plain_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = plain_client.get("/feed/products.json", headers={**bearer(), "X-Forwarded-Proto": "http"})
    assert_https_required(response)


def test_feed_response_carries_hsts_and_is_not_stored_by_shared_caches(https_client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    response = https_client.get("/feed/products.json", headers=bearer())
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "no-store" in response["Cache-Control"]


def test_feed_errors_carry_hsts_too(https_client, settings):
    settings.SECURE_HSTS_SECONDS = 600
    response = https_client.get("/feed/products.json")
    assert response.status_code == 401
    assert response["Strict-Transport-Security"].startswith("max-age=600")


def test_paths_outside_feed_are_left_to_django(plain_client, settings):
    # Outside /feed/ Django's own SSL redirect applies (the admin); only feeds answer 403.
    settings.SECURE_SSL_REDIRECT = True
    response = plain_client.get("/not-a-feed/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
