"""HTTP Basic in front of the feeds (CLERK_FEED_BASIC_AUTH): required in addition to Clerk's
credential, checked in constant time, before any call to Clerk."""

from __future__ import annotations

import hmac

import orjson
import pytest

from feeds import authentication
from tests.security.conftest import MARKER, VERIFY, basic, bearer, body

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"
USER, PASSWORD = "clerk", "s3cret-pässword"


@pytest.fixture(autouse=True)
def _basic_configured(settings):
    settings.CLERK_FEED_BASIC_AUTH = f"{USER}:{PASSWORD}"


def assert_basic_refused(response) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Basic realm="clerkfeeds"')
    assert orjson.loads(body(response))["error"] == "basic_auth_required"
    assert MARKER not in body(response)


def test_right_basic_and_token_is_200(https_client, fake_clerk):
    response = https_client.get(FEED, headers={**basic(USER, PASSWORD), **bearer()})
    assert response.status_code == 200
    assert MARKER in body(response)


def test_right_basic_without_clerk_credential_is_401(https_client, fake_clerk):
    response = https_client.get(FEED, headers=basic(USER, PASSWORD))
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert MARKER not in body(response)


@pytest.mark.parametrize(
    "headers",
    [
        basic(USER, "wrong"),
        basic("wrong", PASSWORD),
        basic(USER, ""),
        basic(USER, PASSWORD + "x"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Bearer {USER}:{PASSWORD}"},
        {},
    ],
    ids=["wrong-password", "wrong-user", "empty-password", "longer-password", "not-base64", "other-scheme", "missing"],
)
def test_wrong_or_missing_basic_is_401_before_any_call_to_clerk(https_client, fake_clerk, headers):
    assert_basic_refused(https_client.get(FEED, headers={**headers, **bearer()}))
    assert fake_clerk.calls(VERIFY) == []


def test_wrong_basic_is_refused_even_when_the_token_is_already_verified(https_client, fake_clerk):
    assert https_client.get(FEED, headers={**basic(USER, PASSWORD), **bearer()}).status_code == 200
    assert_basic_refused(https_client.get(FEED, headers={**basic(USER, "wrong"), **bearer()}))


def test_wrong_basic_is_refused_on_the_single_feed_with_salt_and_hash(https_client, fake_clerk):
    response = https_client.get("/feed/all.json", {"salt": "s", "hash": "0" * 128}, headers=basic(USER, "x"))
    assert_basic_refused(response)


@pytest.mark.parametrize("headers", [basic("wrong", PASSWORD), basic(USER, "wrong"), basic("wrong", "wrong"), {}])
def test_both_parts_are_always_compared(https_client, fake_clerk, monkeypatch, headers):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append(len(a))
        return real(a, b)

    monkeypatch.setattr(authentication.hmac, "compare_digest", spy)
    https_client.get(FEED, headers={**headers, **bearer()})
    # Two comparisons of fixed-length digests: the time says neither which part nor how long.
    assert compared == [32, 32]


def test_malformed_setting_refuses_everyone(https_client, fake_clerk, settings):
    settings.CLERK_FEED_BASIC_AUTH = "clerk:"
    response = https_client.get(FEED, headers={**basic("clerk", ""), **bearer()})
    assert_basic_refused(response)
    assert fake_clerk.calls(VERIFY) == []


def test_without_the_setting_basic_is_not_required(https_client, fake_clerk, settings):
    settings.CLERK_FEED_BASIC_AUTH = ""
    response = https_client.get(FEED, headers=bearer())
    assert response.status_code == 200
    assert "Basic" not in https_client.get(FEED)["WWW-Authenticate"]
