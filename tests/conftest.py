"""Shared fixtures: a fake Clerk on loopback, an authenticated feed client, a clean cache.

The session needs Redis on 127.0.0.1:6379 and stops at once, naming it, when nothing answers
there. Browser tests need Debian's chromium and chromium-driver: skipped without them, except
under CI=true, where their absence fails.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from django.core.cache import caches
from django.test import Client

from clerk.fake import FakeClerk

TEST_TOKEN = "test-importer-token"
TEST_PUBLIC_KEY = "test-public-key"
TEST_PRIVATE_KEY = "test-private-key"

REDIS_ADDRESS = ("127.0.0.1", 6379)
BROWSER_BINARIES = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))


def redis_answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def pytest_sessionstart(session):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checked
        return
    if not redis_answers(REDIS_ADDRESS):
        host, port = REDIS_ADDRESS
        pytest.exit(
            f"The tests need Redis on {host}:{port} and nothing answers there: start it "
            f"(`redis-server --daemonize yes --save ''`; Debian: apt-get install redis-server), "
            "or run `make test`, which starts it when redis-server is installed.",
            returncode=3,
        )


def pytest_runtest_setup(item):
    if item.get_closest_marker("browser") is None:
        return
    missing = [str(path) for path in BROWSER_BINARIES if not path.exists()]
    if missing:
        reason = (
            f"needs Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def _fake_clerk_server():
    fake = FakeClerk(accepted_tokens={TEST_TOKEN}, public_key=TEST_PUBLIC_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _clerk_settings(settings, _fake_clerk_server):
    """Every test talks to the loopback fake Clerk with test keys; nothing reaches the network."""
    settings.CLERK_API_URL = _fake_clerk_server.url
    settings.CLERK_PUBLIC_KEY = TEST_PUBLIC_KEY
    settings.CLERK_PRIVATE_KEY = TEST_PRIVATE_KEY
    settings.CLERK_API_CONNECT_TIMEOUT = 0.5
    settings.CLERK_API_READ_TIMEOUT = 1.0
    # No pushes unless a test asks for them (tests/clerk/test_push.py): the other tests count
    # the outbox's rows and calls of deletions.
    settings.CLERK_PUSH = "off"
    # Import runs written in the request (the test's transaction), not by a background thread.
    settings.CLERK_WALKS_IN_BACKGROUND = False
    _fake_clerk_server.reset()
    _fake_clerk_server.state.slow_seconds = 2.0
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    """Token verifications and pagination cursors must not leak from one test to the next."""
    from feeds.authentication import forget_verified_tokens  # this process's 5-second memory
    from feeds.pagination import forget_unsaved_cursors  # the cursors a failed cache write left in memory

    def forget() -> None:
        for cache in caches.all():
            cache.clear()
        forget_unsaved_cursors()
        forget_verified_tokens()

    forget()
    yield
    forget()


@pytest.fixture
def fake_clerk(_fake_clerk_server) -> FakeClerk:
    return _fake_clerk_server


class HTTPSClient(Client):
    """A test client whose every request is HTTPS.

    `Client(secure=True)` does not do this: `secure` is a per-request argument, and a client-wide
    `secure=True` lands in the WSGI environ as a meaningless key (every feed would answer 403).
    """

    def request(self, **request):
        request["wsgi.url_scheme"] = "https"
        request["SERVER_PORT"] = "443"
        return super().request(**request)


@pytest.fixture
def feed_client() -> Client:
    """A client the way Clerk's importer calls: HTTPS, with a valid bearer token."""
    return HTTPSClient(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})
