"""Clerk's salt/hash on the single feed: SHA512(salt + private key + window), current and
previous 100-second window only, constant-time comparison, every missing piece a 401."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from feeds import authentication
from tests.conftest import TEST_PRIVATE_KEY
from tests.security.conftest import MARKER, VERIFY, body

pytestmark = pytest.mark.usefixtures("feed_site")

SINGLE = "/feed/all.json"
NOW = 1_700_000_050.0  # window 17_000_000, 50 s into it
WINDOW = int(NOW // 100)
SALT = "f1e2d3c4"


def clerk_hash(salt: str = SALT, window: int = WINDOW, key: str = TEST_PRIVATE_KEY) -> str:
    """Clerk's formula, written out independently of the project's code."""
    return hashlib.sha512((salt + key + str(window)).encode()).hexdigest()


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(authentication, "_now", lambda: NOW)


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    assert orjson.loads(body(response))["error"] == code
    assert MARKER not in body(response)


def test_hash_of_the_current_window_is_200(https_client, fake_clerk):
    response = https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash()})
    assert response.status_code == 200
    assert MARKER in body(response)
    assert fake_clerk.calls(VERIFY) == []


def test_hash_of_the_previous_window_is_200(https_client):
    assert https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash(window=WINDOW - 1)}).status_code == 200


def test_uppercase_hex_is_the_same_hash(https_client):
    assert https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash().upper()}).status_code == 200


@pytest.mark.parametrize("window", [WINDOW - 2, WINDOW - 100, WINDOW + 1])
def test_hash_of_a_stale_or_future_window_is_401(https_client, window):
    assert_refused(https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash(window=window)}), "invalid_hash")


@pytest.mark.parametrize(
    "query",
    [
        {"salt": SALT, "hash": clerk_hash(key="another-private-key")},
        {"salt": "another-salt", "hash": clerk_hash()},
        {"salt": SALT, "hash": "0" * 128},
        {"salt": SALT, "hash": clerk_hash()[:-1]},
        {"salt": SALT, "hash": hashlib.sha256(b"x").hexdigest()},
        {"salt": "s" * 300, "hash": clerk_hash(salt="s" * 300)},
    ],
    ids=["wrong-key", "wrong-salt", "zeros", "truncated", "sha256", "oversized-salt"],
)
def test_wrong_hash_is_401(https_client, query):
    assert_refused(https_client.get(SINGLE, query), "invalid_hash")


@pytest.mark.parametrize(
    "query",
    [{"salt": SALT}, {"hash": clerk_hash()}, {"salt": "", "hash": clerk_hash(salt="")}, {"salt": SALT, "hash": ""}],
    ids=["no-hash", "no-salt", "empty-salt", "empty-hash"],
)
def test_missing_pieces_are_401(https_client, query):
    assert_refused(https_client.get(SINGLE, query), "malformed_credentials")


def test_no_credential_at_all_is_401(https_client):
    assert_refused(https_client.get(SINGLE), "not_authenticated")


def test_salt_and_hash_do_not_open_other_feeds(https_client):
    response = https_client.get("/feed/customers.json", {"salt": SALT, "hash": clerk_hash()})
    assert_refused(response, "not_authenticated")


def test_without_a_private_key_no_hash_admits(https_client, settings):
    settings.CLERK_PRIVATE_KEY = ""
    response = https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash(key="")})
    assert_refused(response, "invalid_hash")


def test_hash_caller_is_known_by_its_address(https_client):
    response = https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash()}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    assert response.wsgi_request.clerk_client_id == "203.0.113.7"


def test_hash_is_compared_in_constant_time(https_client, monkeypatch):
    compared = []
    real = authentication.hmac.compare_digest
    monkeypatch.setattr(authentication.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    https_client.get(SINGLE, {"salt": SALT, "hash": clerk_hash()})
    assert compared == [1, 1]  # both windows, even when the first matches
