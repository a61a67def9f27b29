"""Helpers for the security tests: clients the way Clerk's importer (or an attacker) calls, and
the two sites every security behaviour is proven on.

`feed_site` runs a test twice: against a stand-in DRF view under /feed/ (tests/security/urls.py:
the security layer alone, whatever the feeds serve) and against the project's real feed views
(clerkfeeds.urls, with a product in the database). Both carry `MARKER` in a successful body, so
"no feed data in the body" is one assertion for both.
"""

from __future__ import annotations

import base64
import socket

import pytest
from django.test import Client

from tests.conftest import TEST_TOKEN, HTTPSClient
from tests.factories import ProductFactory
from tests.security.urls import FEED_MARKER

MARKER = FEED_MARKER.encode()
FEED_PATHS = [
    "/feed/products.json",
    "/feed/categories.json",
    "/feed/orders.json",
    "/feed/customers.json",
    "/feed/pages.json",
    "/feed/products.ndjson",
    "/feed/customers.ndjson",
    "/feed/all.json",
    "/feed/unknown.json",
]
VERIFY = "/token/verify"


@pytest.fixture(params=["stand-in", "real"])
def feed_site(request, settings, db) -> str:
    # `db` is a static dependency: requested dynamically as the session's first database use,
    # pytest-django leaves the connection on the development database.
    if request.param == "stand-in":
        settings.ROOT_URLCONF = "tests.security.urls"
    else:
        ProductFactory(name=FEED_MARKER)
    return request.param


def body(response) -> bytes:
    """The whole body, streamed or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def bearer(token: str = TEST_TOKEN) -> dict[str, str]:
    return {"X-Clerk-Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture
def https_client() -> Client:
    """HTTPS, no credentials: each test adds the headers it is about."""
    return HTTPSClient()


@pytest.fixture
def plain_client() -> Client:
    return Client()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
