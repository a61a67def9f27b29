"""Clerk broken is not the token bad: an unusable reply is a 503 that nothing remembers.

No cached refusal, no memorised verdict, no failure counted against the caller: the first
request after Clerk recovers is verified anew and admitted.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from feeds import authentication
from feeds.authentication import TOKEN_CACHE_PREFIX, token_digest
from feeds.throttling import AuthFailureThrottle
from tests.conftest import TEST_TOKEN
from tests.security.conftest import VERIFY, bearer

pytestmark = pytest.mark.usefixtures("feed_site")

FEED = "/feed/products.json"
UNUSABLE = ["malformed", "truncated", "empty", "not-object", "no-status"]
ADDRESS = "198.51.100.7"
LIMIT = 3


@pytest.mark.parametrize("outcome", UNUSABLE)
def test_the_same_token_is_admitted_as_soon_as_clerk_recovers(https_client, fake_clerk, outcome):
    fake_clerk.behave(VERIFY, outcome)
    broken = https_client.get(FEED, headers=bearer())
    assert broken.status_code == 503 and int(broken["Retry-After"]) >= 1
    assert https_client.get(FEED, headers=bearer()).status_code == 200
    assert len(fake_clerk.calls(VERIFY)) == 2  # asked again: no refusal was remembered


@pytest.mark.parametrize("outcome", [*UNUSABLE, "error500", "status:429"])
def test_an_outage_leaves_nothing_in_the_shared_cache_or_the_memo(https_client, fake_clerk, outcome):
    fake_clerk.behave(VERIFY, outcome)
    assert https_client.get(FEED, headers=bearer()).status_code == 503
    digest = token_digest(TEST_TOKEN)
    assert cache.get(TOKEN_CACHE_PREFIX + digest) is None
    assert not authentication._verified_memo.holds(digest)
    assert authentication._verified_memo._until == {}


def test_a_refusal_after_an_outage_is_still_a_refusal(https_client, fake_clerk):
    fake_clerk.behave(VERIFY, "malformed")
    assert https_client.get(FEED, headers=bearer("a-token-clerk-does-not-know")).status_code == 503
    assert https_client.get(FEED, headers=bearer("a-token-clerk-does-not-know")).status_code == 401


@pytest.fixture
def low_failure_limit(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"feed_auth_failures": f"{LIMIT}/min"},
    }


@pytest.mark.usefixtures("low_failure_limit")
@pytest.mark.parametrize("outcome", ["malformed", "error500", "status:503"])
def test_an_outage_is_not_counted_against_the_importer(https_client, fake_clerk, outcome):
    fake_clerk.behave(VERIFY, *[outcome] * (LIMIT * 2))
    for _ in range(LIMIT * 2):
        response = https_client.get(FEED, headers=bearer(), REMOTE_ADDR=ADDRESS)
        assert response.status_code == 503 and response.wsgi_request.clerk_outage
    assert cache.get(AuthFailureThrottle().get_cache_key(response.wsgi_request)) in (None, [])
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR=ADDRESS).status_code == 200


@pytest.mark.usefixtures("low_failure_limit")
def test_refused_tokens_still_count_during_an_outage(https_client, fake_clerk):
    fake_clerk.behave(VERIFY, "malformed", "refuse", "malformed", "refuse", "refuse")
    statuses = [https_client.get(FEED, headers=bearer(f"guess-{i}"), REMOTE_ADDR=ADDRESS).status_code for i in range(5)]
    assert statuses == [503, 401, 503, 401, 401]
    assert https_client.get(FEED, headers=bearer(), REMOTE_ADDR=ADDRESS).status_code == 429
