"""A verified token is cached under a keyed digest: an importer's walk costs one call to Clerk."""

from __future__ import annotations

import hashlib
import time

import pytest
from django.core.cache import cache

from tests.conftest import TEST_TOKEN
from tests.security.conftest import VERIFY, bearer

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"
OTHER_TOKEN = "another-importer-token"


def test_fifty_pages_with_one_token_cost_one_verification(https_client, fake_clerk):
    for page in range(50):
        response = https_client.get(FEED, {"limit": 100, "offset": page * 100}, headers=bearer())
        assert response.status_code == 200
    assert len(fake_clerk.calls(VERIFY)) == 1


def test_a_different_token_is_verified_anew(https_client, fake_clerk):
    fake_clerk.state.accepted_tokens.add(OTHER_TOKEN)
    try:
        assert https_client.get(FEED, headers=bearer()).status_code == 200
        assert https_client.get(FEED, headers=bearer(OTHER_TOKEN)).status_code == 200
        assert https_client.get(FEED, headers=bearer(OTHER_TOKEN)).status_code == 200
    finally:
        fake_clerk.state.accepted_tokens.discard(OTHER_TOKEN)
    assert [c.body["token"] for c in fake_clerk.calls(VERIFY)] == [TEST_TOKEN, OTHER_TOKEN]


def test_after_the_ttl_the_token_is_verified_again(https_client, fake_clerk, settings):
    settings.CLERK_TOKEN_CACHE_SECONDS = 1
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert len(fake_clerk.calls(VERIFY)) == 1
    time.sleep(1.1)
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert len(fake_clerk.calls(VERIFY)) == 2


@pytest.mark.parametrize("feed_site", ["real"], indirect=True)  # one site is enough for a sleep
def test_a_token_revoked_at_clerk_is_refused_once_its_ttl_ends(https_client, fake_clerk, settings):
    settings.CLERK_TOKEN_CACHE_SECONDS = 1
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    fake_clerk.behave(VERIFY, "refuse")
    time.sleep(1.1)
    assert https_client.get(FEED, headers=bearer()).status_code == 401


def test_a_refusal_is_cached_briefly(https_client, fake_clerk):
    for _ in range(5):
        assert https_client.get(FEED, headers=bearer("wrong-token")).status_code == 401
    assert len(fake_clerk.calls(VERIFY)) == 1


def test_the_cache_holds_neither_the_token_nor_a_plain_hash_of_it(https_client, fake_clerk, monkeypatch):
    stored = []
    real_set = cache.set

    def recording_set(key, value, *args, **kwargs):
        stored.append(f"{key}={value!r}")
        return real_set(key, value, *args, **kwargs)

    monkeypatch.setattr(cache, "set", recording_set)
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert https_client.get(FEED, headers=bearer("wrong-token")).status_code == 401
    written = " ".join(stored)
    assert len(stored) >= 2
    for secret in (TEST_TOKEN, "wrong-token", hashlib.sha256(TEST_TOKEN.encode()).hexdigest()):
        assert secret not in written


def test_changing_the_public_key_invalidates_cached_verifications(https_client, fake_clerk, settings):
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    settings.CLERK_PUBLIC_KEY = "a-rotated-public-key"
    fake_clerk.state.public_key = None  # the fake accepts any key: only the call count matters
    try:
        assert https_client.get(FEED, headers=bearer()).status_code == 200
    finally:
        fake_clerk.state.public_key = "test-public-key"
    assert len(fake_clerk.calls(VERIFY)) == 2


def test_a_cache_outage_costs_a_call_to_clerk_not_a_500(https_client, fake_clerk, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", broken)
    monkeypatch.setattr(cache, "set", broken)
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert https_client.get(FEED, headers=bearer("wrong-token")).status_code == 401
