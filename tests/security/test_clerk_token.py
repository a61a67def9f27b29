"""`X-Clerk-Authorization: Bearer <token>` against a real-HTTP fake Clerk on loopback.

Only an explicit success admits; every other outcome is the contract's status, carries no feed
data and comes back within the timeout budget (connect + read timeout, plus slack).
"""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import TEST_PUBLIC_KEY, TEST_TOKEN
from tests.security.conftest import MARKER, VERIFY, bearer, body

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"
SLACK_SECONDS = 1.5


def timed_get(client, path=FEED, **kwargs):
    started = time.monotonic()
    response = client.get(path, **kwargs)
    return response, time.monotonic() - started


def budget(settings) -> float:
    return settings.CLERK_API_CONNECT_TIMEOUT + settings.CLERK_API_READ_TIMEOUT + SLACK_SECONDS


def assert_not_authenticated(response) -> None:
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(body(response))["error"]
    assert MARKER not in body(response)


def assert_clerk_unavailable(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert orjson.loads(body(response))["error"] == "clerk_unavailable"
    assert MARKER not in body(response)


def test_token_clerk_accepts_is_200_with_the_feed(https_client, fake_clerk, settings):
    response, elapsed = timed_get(https_client, headers=bearer())
    assert response.status_code == 200
    assert MARKER in body(response)
    assert elapsed < budget(settings)


def test_verification_sends_token_and_public_key_as_json(https_client, fake_clerk):
    https_client.get(FEED, headers=bearer())
    [call] = fake_clerk.calls(VERIFY, method="POST")
    assert call.body == {"token": TEST_TOKEN, "key": TEST_PUBLIC_KEY}


def test_authenticated_request_knows_its_opaque_client_id(https_client, fake_clerk):
    response = https_client.get(FEED, headers=bearer())
    client_id = response.wsgi_request.clerk_client_id
    assert len(client_id) == 16
    assert TEST_TOKEN not in client_id


def test_token_clerk_refuses_is_401(https_client, fake_clerk, settings):
    response, elapsed = timed_get(https_client, headers=bearer("a-token-clerk-does-not-know"))
    assert_not_authenticated(response)
    assert orjson.loads(body(response))["error"] == "invalid_token"
    assert elapsed < budget(settings)


@pytest.mark.parametrize("outcome", ["refuse", "status:400", "status:401", "status:403", "status:404", "html:404"])
def test_clerk_saying_anything_but_ok_is_401(https_client, fake_clerk, settings, outcome):
    fake_clerk.behave(VERIFY, outcome)
    response, elapsed = timed_get(https_client, headers=bearer())
    assert_not_authenticated(response)
    assert elapsed < budget(settings)


@pytest.mark.parametrize(
    "outcome",
    [
        "error500",
        "status:502",
        "status:503",
        "status:429",
        "status:408",
        "html:502",
        # a 200 that is not Clerk's answer: Clerk is broken, the token is not known to be bad
        "malformed",
        "truncated",
        "empty",
        "not-object",
        "no-status",
    ],
)
def test_clerk_failing_is_503_with_retry_after(https_client, fake_clerk, settings, outcome):
    fake_clerk.behave(VERIFY, outcome)
    response, elapsed = timed_get(https_client, headers=bearer())
    assert_clerk_unavailable(response)
    assert elapsed < budget(settings)


def test_clerk_slower_than_the_read_timeout_is_503_within_budget(https_client, fake_clerk, settings):
    fake_clerk.state.slow_seconds = settings.CLERK_API_READ_TIMEOUT + 1.0
    fake_clerk.behave(VERIFY, "slow")
    response, elapsed = timed_get(https_client, headers=bearer())
    assert_clerk_unavailable(response)
    assert settings.CLERK_API_READ_TIMEOUT <= elapsed < budget(settings)


def test_clerk_connection_refused_is_503_within_budget(https_client, settings, closed_port):
    settings.CLERK_API_URL = f"http://127.0.0.1:{closed_port}"
    response, elapsed = timed_get(https_client, headers=bearer())
    assert_clerk_unavailable(response)
    assert elapsed < budget(settings)


def test_clerk_unavailable_is_not_cached(https_client, fake_clerk):
    fake_clerk.behave(VERIFY, "error500")
    assert https_client.get(FEED, headers=bearer()).status_code == 503
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert len(fake_clerk.calls(VERIFY)) == 2


def test_missing_header_is_401_without_asking_clerk(https_client, fake_clerk):
    response = https_client.get(FEED)
    assert_not_authenticated(response)
    assert fake_clerk.calls(VERIFY) == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer",
        "Bearer ",
        f"Token {TEST_TOKEN}",
        TEST_TOKEN,
        f"Bearer {TEST_TOKEN} extra",
        f"Bearer  {TEST_TOKEN}",
        "Bearer tab\there",
        "Bearer " + "x" * 5000,
    ],
    ids=[
        "empty",
        "scheme-only",
        "empty-token",
        "other-scheme",
        "no-scheme",
        "two-tokens",
        "double-space",
        "control-char",
        "oversized",
    ],
)
def test_malformed_header_is_401_without_asking_clerk(https_client, fake_clerk, value):
    response = https_client.get(FEED, headers={"X-Clerk-Authorization": value})
    assert_not_authenticated(response)
    assert orjson.loads(body(response))["error"] == "malformed_credentials"
    assert fake_clerk.calls(VERIFY) == []


def test_bearer_scheme_is_case_insensitive(https_client, fake_clerk):
    response = https_client.get(FEED, headers={"X-Clerk-Authorization": f"bearer {TEST_TOKEN}"})
    assert response.status_code == 200


def test_token_in_the_standard_authorization_header_does_not_admit(https_client, fake_clerk):
    response = https_client.get(FEED, headers={"Authorization": f"Bearer {TEST_TOKEN}"})
    assert_not_authenticated(response)
    assert fake_clerk.calls(VERIFY) == []


def test_head_is_authenticated_like_get(https_client, fake_clerk):
    assert https_client.head(FEED).status_code == 401
    assert https_client.head(FEED, headers=bearer()).status_code == 200
