"""Each process remembers a verified token briefly, to spare an importer's pages a cache round trip,
but never admits a token longer than the shared cache would, and never remembers a refusal.

The clocks of `feeds.authentication` are replaced by one the test moves, so the bounds are
checked to the second without sleeping.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from feeds import authentication
from feeds.authentication import TOKEN_CACHE_PREFIX, VERIFIED_MEMO_SECONDS, token_digest
from tests.conftest import TEST_TOKEN
from tests.security.conftest import VERIFY, bearer

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"


class Clock:
    """Monotonic and wall time, moved together by the test."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._start_monotonic = 1_000.0
        self._start_wall = 1_800_000_000.0

    def monotonic(self) -> float:
        return self._start_monotonic + self.offset

    def wall(self) -> float:
        return self._start_wall + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(authentication, "_monotonic", fake.monotonic)
    monkeypatch.setattr(authentication, "_wall_clock", fake.wall)
    return fake


@pytest.fixture
def cache_reads(monkeypatch) -> list[str]:
    """The token-cache keys read, in order."""
    reads: list[str] = []
    real_get = cache.get

    def counting_get(key, *args, **kwargs):
        if key.startswith(TOKEN_CACHE_PREFIX):
            reads.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counting_get)
    return reads


def status(client, token: str = TEST_TOKEN) -> int:
    return client.get(FEED, headers=bearer(token)).status_code


def test_consecutive_pages_within_the_memo_skip_the_cache(https_client, fake_clerk, clock, cache_reads):
    assert status(https_client) == 200
    reads_after_verification = len(cache_reads)
    for _ in range(5):
        clock.advance(0.5)
        assert status(https_client) == 200
    assert len(cache_reads) == reads_after_verification
    assert len(fake_clerk.calls(VERIFY)) == 1


def test_the_memo_ends_after_its_bound_and_the_cache_is_asked_again(https_client, fake_clerk, clock, cache_reads):
    assert status(https_client) == 200
    reads = len(cache_reads)
    clock.advance(VERIFIED_MEMO_SECONDS)
    assert status(https_client) == 200
    assert len(cache_reads) == reads + 1  # answered by the cache, which still holds the success
    assert len(fake_clerk.calls(VERIFY)) == 1


def test_a_success_gone_from_the_cache_is_honoured_no_longer_than_the_memo_bound(https_client, fake_clerk, clock):
    assert status(https_client) == 200
    cache.delete(TOKEN_CACHE_PREFIX + token_digest(TEST_TOKEN))
    fake_clerk.behave(VERIFY, "refuse")
    clock.advance(VERIFIED_MEMO_SECONDS - 0.1)
    assert status(https_client) == 200  # still within this process's memory
    clock.advance(0.1)
    assert status(https_client) == 401  # the memory ended: the cache has nothing, Clerk refuses


def test_the_memo_never_outlives_a_short_cache_lifetime(https_client, fake_clerk, clock, settings):
    settings.CLERK_TOKEN_CACHE_SECONDS = 2
    assert status(https_client) == 200
    fake_clerk.behave(VERIFY, "refuse")
    clock.advance(1.9)
    assert status(https_client) == 200
    clock.advance(0.1)
    # Two seconds after Clerk said yes: neither the memory nor the cache entry (by the expiry it
    # carries, whatever the cache still holds) vouches for the token any more.
    assert status(https_client) == 401
    assert len(fake_clerk.calls(VERIFY)) == 2


def test_a_success_another_process_cached_is_remembered_only_until_its_expiry(https_client, fake_clerk, clock):
    key = TOKEN_CACHE_PREFIX + token_digest(TEST_TOKEN)
    cache.set(key, ("verified", clock.wall() + 1.5), 300)  # written by another worker, 1.5 s left
    assert status(https_client) == 200
    assert fake_clerk.calls(VERIFY) == []
    fake_clerk.behave(VERIFY, "refuse")
    clock.advance(1.5)
    assert status(https_client) == 401
    assert len(fake_clerk.calls(VERIFY)) == 1


def test_a_success_of_unknown_expiry_is_honoured_but_not_remembered(https_client, fake_clerk, clock, cache_reads):
    cache.set(TOKEN_CACHE_PREFIX + token_digest(TEST_TOKEN), "verified", 300)  # the older format
    assert status(https_client) == 200
    assert status(https_client) == 200
    assert len(cache_reads) == 2
    assert fake_clerk.calls(VERIFY) == []


def test_a_refusal_is_not_remembered_by_the_process(https_client, fake_clerk, clock):
    fake_clerk.behave(VERIFY, "refuse")
    assert status(https_client) == 401
    # The shared cache's refusal expires (or is cleared); Clerk now accepts the token.
    cache.clear()
    assert status(https_client) == 200


def test_a_blocked_address_gets_429_even_with_a_remembered_token(https_client, fake_clerk, clock, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"feed_auth_failures": "3/min"}}
    address = "198.51.100.77"
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR=address).status_code == 200
    for i in range(3):
        assert https_client.get(FEED, headers=bearer(f"guess-{i}"), REMOTE_ADDR=address).status_code == 401
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR=address).status_code == 429


def test_a_changed_public_key_is_never_answered_from_memory(https_client, fake_clerk, clock, settings):
    assert status(https_client) == 200
    settings.CLERK_PUBLIC_KEY = "a-rotated-public-key"
    fake_clerk.behave(VERIFY, "refuse")
    assert status(https_client) == 401


def test_the_memo_stays_bounded(monkeypatch, clock):
    monkeypatch.setattr(authentication, "VERIFIED_MEMO_MAX_ENTRIES", 4)
    memo = authentication._VerifiedMemo()
    for i in range(10):
        memo.remember(f"digest-{i}", 5)
        assert len(memo._until) <= 4
    assert memo.holds("digest-9")
