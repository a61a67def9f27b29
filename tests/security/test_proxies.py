"""The client's address behind NUM_PROXIES trusted proxies: what a client writes into
X-Forwarded-For never changes the key of its failure limit."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from feeds.proxies import client_address, client_ip

SOCKET = "10.0.0.9"  # the nearest proxy, as the socket sees it


def request(forwarded: str | None = None, remote: str | None = SOCKET):
    meta = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    req = RequestFactory().get("/feed/products.json", **meta)
    if remote is None:
        del req.META["REMOTE_ADDR"]
    else:
        req.META["REMOTE_ADDR"] = remote
    return req


@pytest.fixture
def proxies(settings):
    def set_count(count: int | None, *, trust: bool = False) -> None:
        settings.NUM_PROXIES = count
        settings.TRUST_X_FORWARDED_PROTO = trust

    return set_count


@pytest.mark.parametrize(
    ("count", "forwarded", "client"),
    [
        (0, None, SOCKET),
        (0, "203.0.113.7", SOCKET),
        (0, "1.1.1.1, 203.0.113.7", SOCKET),
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "1.1.1.1, 203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 1.1.1.1, 203.0.113.7", "203.0.113.7"),
        (2, "203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "1.1.1.1, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "6.6.6.6,1.1.1.1 ,203.0.113.7,10.0.0.2", "203.0.113.7"),
    ],
)
def test_the_client_is_count_entries_from_the_right(proxies, count, forwarded, client):
    proxies(count)
    assert client_address(request(forwarded)) == client
    # Whatever the client prepends, the key stays the same.
    spoofed = f"198.51.100.1, {forwarded}" if forwarded else "198.51.100.1"
    assert client_address(request(spoofed)) == client


@pytest.mark.parametrize(("trust", "client"), [(True, "203.0.113.7"), (False, SOCKET)])
def test_unset_means_one_proxy_behind_tls_and_none_otherwise(proxies, trust, client):
    proxies(None, trust=trust)
    assert client_address(request("1.1.1.1, 203.0.113.7")) == client


def test_an_explicit_count_holds_whatever_tls_says(proxies):
    proxies(0, trust=True)
    assert client_address(request("203.0.113.7")) == SOCKET
    proxies(1, trust=False)
    assert client_address(request("203.0.113.7")) == "203.0.113.7"


@pytest.mark.parametrize("forwarded", [None, "", "203.0.113.7", "not-an-address, 10.0.0.2"])
def test_a_header_that_did_not_come_through_the_proxies_gives_the_socket(proxies, forwarded):
    proxies(2)
    assert client_address(request(forwarded)) == SOCKET


@pytest.mark.parametrize(
    ("entry", "client"),
    [
        ("203.0.113.7:5123", "203.0.113.7"),
        ("[2001:db8::7]:5123", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
    ],
)
def test_ports_brackets_and_spellings_give_one_key(proxies, entry, client):
    proxies(1)
    assert client_address(request(entry)) == client


def test_no_address_at_all_is_unknown_for_keys_and_none_for_axes(proxies):
    proxies(0)
    assert client_address(request(remote=None)) == "unknown"
    assert client_ip(request(remote=None)) is None
