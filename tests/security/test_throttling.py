"""Repeated failures from one client address are answered 429, before Clerk is asked."""

from __future__ import annotations

import orjson
import pytest

from feeds.throttling import AuthFailureThrottle
from tests.security.conftest import MARKER, VERIFY, bearer, body

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"
LIMIT = 5


@pytest.fixture(autouse=True)
def _low_limit(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"feed_auth_failures": f"{LIMIT}/min"},
    }


def fail(client, n: int, address: str = "198.51.100.1") -> None:
    for i in range(n):
        assert client.get(FEED, headers=bearer(f"guess-{i}"), REMOTE_ADDR=address).status_code == 401


def test_repeated_failures_get_429_with_retry_after(https_client, fake_clerk):
    fail(https_client, LIMIT)
    response = https_client.get(FEED, headers=bearer("guess-more"), REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 429
    assert orjson.loads(body(response))["error"] == "too_many_requests"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert MARKER not in body(response)


def test_a_blocked_address_no_longer_reaches_clerk(https_client, fake_clerk):
    fail(https_client, LIMIT)
    calls = len(fake_clerk.calls(VERIFY))
    for i in range(10):
        https_client.get(FEED, headers=bearer(f"more-{i}"), REMOTE_ADDR="198.51.100.1")
    assert len(fake_clerk.calls(VERIFY)) == calls


def test_a_blocked_address_is_blocked_even_with_a_good_token(https_client, fake_clerk):
    fail(https_client, LIMIT)
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR="198.51.100.1").status_code == 429


def test_other_addresses_are_not_blocked(https_client, fake_clerk):
    fail(https_client, LIMIT)
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR="198.51.100.2").status_code == 200


def test_successes_are_not_counted(https_client, fake_clerk):
    for _ in range(LIMIT * 3):
        assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR="198.51.100.3").status_code == 200


def test_clerk_being_down_is_not_counted_against_the_client(https_client, fake_clerk):
    """An importer with a good token is not locked out by Clerk's outage (test_clerk_outage.py)."""
    fake_clerk.behave(VERIFY, *["error500"] * LIMIT)
    for _ in range(LIMIT):
        assert https_client.get(FEED, headers=bearer()).status_code == 503
    assert https_client.get(FEED, headers=bearer()).status_code == 200


def test_missing_credentials_count_as_failure(https_client, fake_clerk):
    for _ in range(LIMIT):
        assert https_client.get(FEED).status_code == 401
    assert https_client.get(FEED).status_code == 429


def test_the_block_ends_when_the_failures_leave_the_window(https_client, fake_clerk, monkeypatch):
    clock = [1_000.0]
    monkeypatch.setattr(AuthFailureThrottle, "timer", lambda self: clock[0])
    fail(https_client, LIMIT, address="198.51.100.4")
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR="198.51.100.4").status_code == 429
    clock[0] += 61
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR="198.51.100.4").status_code == 200


def test_forwarded_for_is_ignored_without_a_trusted_proxy(https_client, fake_clerk, settings):
    settings.TRUST_X_FORWARDED_PROTO = False
    for i in range(LIMIT):
        https_client.get(FEED, headers={**bearer(f"g{i}"), "X-Forwarded-For": f"192.0.2.{i}"})
    # All came from the same socket address, whatever they claimed.
    assert https_client.get(FEED, headers={**bearer(), "X-Forwarded-For": "192.0.2.99"}).status_code == 429


def test_behind_a_trusted_proxy_the_address_it_appended_counts(https_client, fake_clerk, settings):
    settings.TRUST_X_FORWARDED_PROTO = True
    for i in range(LIMIT):
        # The attacker forges the first entry; the proxy appends the real address last.
        https_client.get(FEED, headers={**bearer(f"g{i}"), "X-Forwarded-For": f"10.0.0.{i}, 203.0.113.9"})
    blocked = https_client.get(FEED, headers={**bearer(), "X-Forwarded-For": "10.9.9.9, 203.0.113.9"})
    assert blocked.status_code == 429
    other = https_client.get(FEED, headers={**bearer(), "X-Forwarded-For": "203.0.113.10"})
    assert other.status_code == 200


def test_behind_two_proxies_spoofed_entries_share_the_real_clients_limit(https_client, fake_clerk, settings):
    settings.TRUST_X_FORWARDED_PROTO = True
    settings.NUM_PROXIES = 2
    for i in range(LIMIT):
        # The attacker varies what it sends; the outer proxy appends what it saw, the inner one the outer.
        forged = f"192.0.2.{i}, 203.0.113.9, 10.0.0.2"
        https_client.get(FEED, headers={**bearer(f"g{i}"), "X-Forwarded-For": forged})
    blocked = https_client.get(FEED, headers={**bearer(), "X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.0.0.2"})
    assert blocked.status_code == 429
    other = https_client.get(FEED, headers={**bearer(), "X-Forwarded-For": "203.0.113.10, 10.0.0.2"})
    assert other.status_code == 200
