"""The walk cursors on a Redis cache: one HGET per page, one atomic script per write.

Runs against the test Redis (db 5, as the other Redis tests) with a key prefix of its own.
The behaviour is the one `tests/feeds/test_walk_safety.py` holds the generic cache to.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feeds import pagination
from feeds.params import FeedParams
from shop.models import Product
from tests.factories import ProductFactory
from tests.feeds.test_walk_safety import page

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def redis_cache(settings):
    prefix = f"test-cursors-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/5",
            "KEY_PREFIX": prefix,
        }
    }
    yield
    client = pagination._RedisCursors.of_cache().client
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def cursors(client="importer", limit=2):
    return pagination.Cursors(feed="products", walk=FeedParams(limit=limit).walk(), client=client)


def test_the_cursors_are_on_redis_with_one_client_per_process():
    walks = cursors()
    assert walks._redis is not None and walks._redis is cursors()._redis
    walks.advance(served=0, next_offset=2, last_pk=20)
    assert list(walks._redis.client.hgetall(walks.hash_key)) == [b"2"]
    assert walks.get(2) == 20


def test_one_round_trip_per_read_and_per_write(monkeypatch):
    walks = cursors()
    calls = []
    original = type(walks._redis.client).execute_command

    def counting(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(walks._redis.client), "execute_command", counting)
    walks.advance(served=0, next_offset=2, last_pk=20)
    assert calls == ["EVALSHA"]
    calls.clear()
    assert walks.get(2) == 20
    assert calls == ["HGET"]


def test_a_cursor_is_only_ever_lowered_by_later_writes():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    walks.advance(served=0, next_offset=2, last_pk=30)
    assert walks.get(2) == 20
    walks.advance(served=0, next_offset=2, last_pk=15)
    assert walks.get(2) == 15


def test_keys_are_compared_as_integers_not_as_text_or_floats():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=9)
    walks.advance(served=0, next_offset=2, last_pk=10)  # "10" < "9" as text
    assert walks.get(2) == 9
    big = 2**62 + 1  # past a double's exact integers
    walks.advance(served=0, next_offset=4, last_pk=big)
    walks.advance(served=0, next_offset=4, last_pk=big - 1)
    assert walks.get(4) == big - 1
    walks.advance(served=0, next_offset=6, last_pk=-5)
    walks.advance(served=0, next_offset=6, last_pk=-40)
    walks.advance(served=0, next_offset=6, last_pk=3)
    assert walks.get(6) == -40


def test_a_cursor_stays_while_any_walk_still_waits_on_it():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    walks.advance(served=0, next_offset=2, last_pk=30)
    walks.advance(served=2, next_offset=4, last_pk=40)
    assert walks.get(2) == 20
    walks.advance(served=2, next_offset=4, last_pk=50)
    assert walks.get(2) is None
    assert walks.get(4) == 40


def test_a_walk_that_ended_leaves_nothing_behind():
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    walks.advance(served=2, next_offset=4, last_pk=40)
    walks.walk_ended(4)
    assert not walks._redis.client.exists(walks.hash_key)
    walks.advance(served=0, next_offset=2, last_pk=25)
    assert walks.get(2) == 25


def test_records_expire_with_the_ttl_and_the_hash_with_its_last_write(monkeypatch):
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=20)
    ttl = walks._redis.client.ttl(walks.hash_key)
    assert 0 < ttl <= pagination.CURSOR_TTL_SECONDS
    later = time.time() + pagination.CURSOR_TTL_SECONDS + 1
    monkeypatch.setattr(pagination.time, "time", lambda: later)
    assert walks.get(2) is None
    walks.advance(served=0, next_offset=2, last_pk=30)  # the next walk is not pulled back
    assert walks.get(2) == 30


def test_a_record_it_cannot_read_is_a_miss():
    walks = cursors()
    walks._redis.client.hset(walks.hash_key, "2", b"not|a|record")
    assert walks.get(2) is None
    walks.advance(served=0, next_offset=2, last_pk=20)  # the script drops it and writes anew
    assert walks.get(2) == 20


def test_a_failed_write_removes_the_cursors_and_keeps_its_own_here(monkeypatch):
    walks = cursors()
    walks.advance(served=0, next_offset=2, last_pk=40)

    def failing(*args, **kwargs):
        raise ConnectionError("write timeout")

    with monkeypatch.context() as patched:
        patched.setattr(walks._redis, "script", failing)
        walks.advance(served=0, next_offset=2, last_pk=30)
    assert not walks._redis.client.exists(walks.hash_key)
    assert walks.get(2) == 30
    walks.advance(served=0, next_offset=2, last_pk=35)  # a later write carries the key kept here
    assert cursors(client="importer").get(2) == 30
    pagination.forget_unsaved_cursors()
    assert walks.get(2) == 30  # stored in Redis now


def test_walks_are_exact_and_back_to_back_walks_too():
    for pk in (10, 20, 30, 40, 50, 60):
        ProductFactory(id=pk)

    def walk():
        served, offset = [], 0
        while ids := page("products", limit=2, offset=offset):
            served += ids
            offset += 2
        return served

    assert walk() == [10, 20, 30, 40, 50, 60]
    Product.objects.filter(pk=10).delete()
    assert walk() == [20, 30, 40, 50, 60]
    assert cache.get("anything") is None  # the Django cache itself still works beside the hashes


def test_a_served_page_keeps_its_cursor_for_a_retry_and_releases_it_with_the_next_page():
    walks = cursors(limit=5)
    walks.advance(served=0, next_offset=5, last_pk=60, start=None, upto=60, by_rows=(3, 30))
    assert walks.get(5) == 60 and walks.get(3) == 30
    assert walks.find(0).held == 1 and walks.find(0).upto == 60 and walks.find(0).last_pk is None
    walks.advance(served=0, next_offset=5, last_pk=60, start=None, upto=60, by_rows=(3, 30))  # a retry
    assert walks.find(5).waiting == 1 and walks.find(3).waiting == 1
    walks.advance(served=3, next_offset=8, last_pk=90, start=30, upto=90)
    assert walks.get(5) is None and walks.find(0) is None and walks.find(3).held == 1
    walks.walk_ended(8)
    assert not walks._redis.client.exists(walks.hash_key)


def test_records_of_the_earlier_format_are_read():
    walks = cursors()
    walks._redis.client.hset(walks.hash_key, "2", f"20|1|{time.time() + 60:.3f}")
    assert walks.get(2) == 20
    walks.advance(served=2, next_offset=4, last_pk=40)
    assert walks.get(2) is None and walks.get(4) == 40


_keys = st.integers(1, 60)


@st.composite
def _update(draw):
    """An update as pages make them: the next offset after the served one, and maybe the
    rows-served one before it, each naming the other as its sibling."""
    release = draw(st.integers(0, 4))
    keep = draw(st.none() | st.tuples(st.none() | _keys, st.none() | _keys))
    after = draw(st.integers(release + 1, 6))
    adds = [] if draw(st.booleans()) else [(after, draw(_keys), None)]
    if adds and after > release + 1 and draw(st.booleans()):
        by_rows = draw(st.integers(release + 1, after - 1))
        adds = [(after, adds[0][1], by_rows), (by_rows, draw(_keys), after)]
    return {"release": release, "keep": keep, "adds": adds}


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(updates=st.lists(_update(), max_size=12))
def test_property_the_script_and_the_generic_update_agree(updates):
    """`_UPDATE_SCRIPT` is `_apply` on Redis: the same updates leave the same records."""
    walks = cursors(client=f"agree-{uuid.uuid4().hex}")
    now = time.time()
    pending: dict = {}
    for update in updates:
        pagination._apply(pending, release=update["release"], keep=update["keep"], adds=update["adds"], now=now)
        walks._redis.update(
            walks.hash_key, release=update["release"], keep=update["keep"], adds=update["adds"], now=now
        )
        on_redis = {offset: walks._redis.get(walks.hash_key, offset, now) for offset in range(7)}
        assert {offset: r._replace(expires=0) for offset, r in on_redis.items() if r is not None} == {
            offset: r._replace(expires=0) for offset, r in pending.items()
        }
    walks._redis.client.delete(walks.hash_key)
