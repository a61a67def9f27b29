"""Where CLERK_API_URL points: a local address in any spelling is clerkfeeds.E012, a name that does
not resolve is clerkfeeds.E016 (fail closed), a public one passes. No test touches the network:
the resolver is replaced in every test of this module."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from clerk import addresses
from clerk.addresses import HostKind, classify_host
from feeds import checks

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def answers(*ips: str):
    """A stand-in for socket.getaddrinfo answering `ips` for any name (none: the name is unknown)."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    getaddrinfo.asked = asked
    return getaddrinfo


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    """Every name resolves to a public address unless a test says otherwise; lookups are recorded."""
    fake = answers(PUBLIC_V4)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.CLERK_API_URL = "https://api.clerk.io/v2"
    return settings


# Every spelling of a loopback, private, link-local, unspecified, reserved or multicast address.
LOCAL_URLS = [
    "https://127.0.0.1",
    "https://127.1",
    "https://2130706433",
    "https://0x7f000001",
    "https://0x7f.1",
    "https://0177.0.0.1",
    "https://0177.1",
    "https://127.0.0.1.",
    "https://127.0.0.1:8443/v2",
    "https://[::1]",
    "https://[0:0:0:0:0:0:0:1]",
    "https://[::ffff:127.0.0.1]",
    "https://[::ffff:7f00:1]",
    "https://[::127.0.0.1]",
    "https://[64:ff9b::127.0.0.1]",
    "https://[2002:7f00:1::]",
    "https://[fe80::1%25eth0]",
    "https://localhost",
    "https://localhost.",
    "https://LOCALHOST",
    "https://LocalHost:8765/v2",
    "https://clerk.localhost",
    "https://ｌｏｃａｌｈｏｓｔ",
    "https://１２７。０。０。１",
    "https://0.0.0.0",
    "https://0",
    "https://[::]",
    "https://10.1.2.3",
    "https://012.1.2.3",
    "https://172.16.0.1",
    "https://192.168.1.1",
    "https://0xc0a80101",
    "https://[fd00::1]",
    "https://169.254.169.254",
    "https://[fe80::1]",
    "https://100.64.0.1",
    "https://192.0.2.1",
    "https://240.0.0.1",
    "https://255.255.255.255",
    "https://224.0.0.1",
    "https://[ff02::1]",
    "https://",
    "https://[::1",
]


@pytest.mark.parametrize("url", LOCAL_URLS)
def test_a_local_address_in_any_spelling_is_e012(production, resolver, url):
    production.CLERK_API_URL = url
    assert [m.id for m in checks.check_clerk_api_public(None)] == ["clerkfeeds.E012"]
    assert resolver.asked == []  # decided from the spelling alone


@pytest.mark.parametrize(
    "resolved",
    [("127.0.0.1",), ("10.0.0.5",), ("::1",), ("fd12::1",), ("169.254.1.1",), (PUBLIC_V4, "192.168.0.7")],
    ids=["loopback", "private", "v6-loopback", "v6-unique-local", "link-local", "one-of-several"],
)
def test_a_name_that_resolves_to_a_local_address_is_e012(production, monkeypatch, resolved):
    monkeypatch.setattr(socket, "getaddrinfo", answers(*resolved))
    production.CLERK_API_URL = "https://clerk-proxy.shop.example/v2"
    assert [m.id for m in checks.check_clerk_api_public(None)] == ["clerkfeeds.E012"]


def test_a_name_that_resolves_to_public_addresses_passes(production, monkeypatch):
    resolver = answers(PUBLIC_V4, PUBLIC_V6)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    production.CLERK_API_URL = "https://clerk-egress.shop.example/v2"
    assert checks.check_clerk_api_public(None) == []
    assert resolver.asked == ["clerk-egress.shop.example"]


@pytest.mark.parametrize("url", ["https://8.8.8.8", "https://[2606:4700::1111]", "https://[::ffff:8.8.8.8]"])
def test_a_public_address_passes(production, url):
    production.CLERK_API_URL = url
    assert checks.check_clerk_api_public(None) == []


def test_a_name_that_does_not_resolve_is_e016(production, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", answers())
    production.CLERK_API_URL = "https://clerk.nowhere.example/v2"
    assert [m.id for m in checks.check_clerk_api_public(None)] == ["clerkfeeds.E016"]


def test_clerks_own_host_is_trusted_without_a_lookup(production, monkeypatch):
    resolver = answers()  # no DNS at all, as in a build container
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert checks.check_clerk_api_public(None) == []
    assert resolver.asked == []


def test_a_resolver_that_hangs_is_abandoned_after_the_bound(monkeypatch):
    release = threading.Event()

    def hanging(*args, **kwargs):
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        assert classify_host("slow.shop.example", timeout=0.2) is HostKind.UNRESOLVED
        assert time.monotonic() - started < 2
    finally:
        release.set()


def test_in_debug_the_fake_clerk_on_loopback_is_allowed(production):
    production.DEBUG = True
    production.CLERK_API_URL = "http://127.0.0.1:8765"
    assert checks.check_clerk_api_public(None) == []


def test_a_url_that_does_not_parse_is_not_https_either(production):
    production.CLERK_API_URL = "https://[::1"
    assert [m.id for m in checks.check_clerk_api_https(None)] == ["clerkfeeds.E011"]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("api.clerk.io", None),
        ("08.1.1.1", None),  # 08 is not octal: a resolver would look it up as a name
    ],
)
def test_literals_are_read_as_a_resolver_reads_them(text, address):
    parsed = addresses.parse_address(text)
    assert (None if parsed is None else str(parsed).split("%")[0]) == address
