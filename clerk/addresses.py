"""Where a host name points: a public address, a local one, or nobody knows.

`classify_host(host)` answers PUBLIC, LOCAL (loopback, private, link-local, unspecified,
reserved, multicast, shared, documentation: anything not globally reachable) or UNRESOLVED.
A host is read the way a resolver reads it: IDNA-normalised (full-width letters, ideographic
dots), a trailing dot dropped, IPv6 with or without brackets or zone, IPv4 in every form
`inet_aton` accepts (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`), IPv4 inside IPv6
(mapped, compatible, 6to4, NAT64) judged by that IPv4 address. `localhost` and `*.localhost` are LOCAL
without a lookup (RFC 6761); any other name is resolved with `socket.getaddrinfo`, bounded by
`timeout`, and is LOCAL when any of its addresses is. No answer in time is UNRESOLVED.
"""

from __future__ import annotations

import enum
import ipaddress
import queue
import socket
import threading

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 2.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostKind(enum.Enum):
    PUBLIC = "public"
    LOCAL = "local"
    UNRESOLVED = "unresolved"


def classify_host(host: str | None, *, timeout: float = RESOLVE_TIMEOUT_SECONDS) -> HostKind:
    """PUBLIC, LOCAL or UNRESOLVED for `host` as a URL names it (see the module docstring)."""
    name = _normalised(host)
    if name is None:
        return HostKind.UNRESOLVED
    if not name or name == "localhost" or name.endswith(".localhost"):
        return HostKind.LOCAL
    literal = parse_address(name)
    if literal is not None:
        return HostKind.LOCAL if is_local_address(literal) else HostKind.PUBLIC
    addresses = resolve(name, timeout=timeout)
    if not addresses:
        return HostKind.UNRESOLVED
    return HostKind.LOCAL if any(is_local_address(a) for a in addresses) else HostKind.PUBLIC


def parse_address(text: str) -> Address | None:
    """The address `text` spells as a literal, in any form a resolver accepts; None for a name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone does not change the address
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def is_local_address(address: Address) -> bool:
    """Not somewhere on the public internet: Clerk's API cannot live there."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # the packets go to that IPv4 address
            return is_local_address(embedded)
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
    )


def resolve(name: str, *, timeout: float = RESOLVE_TIMEOUT_SECONDS) -> list[Address]:
    """Every address `name` resolves to, or [] when the resolver fails or takes over `timeout`.

    getaddrinfo has no timeout of its own, so it runs in a daemon thread that is abandoned (never
    joined) when it overruns: a hung resolver cannot hold the caller or the interpreter's exit.
    """
    answers: queue.Queue = queue.Queue(maxsize=1)

    def lookup() -> None:
        try:
            answers.put(socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP))
        except (OSError, UnicodeError, ValueError):
            answers.put([])

    threading.Thread(target=lookup, name="clerkfeeds-resolve", daemon=True).start()
    try:
        infos = answers.get(timeout=timeout)
    except queue.Empty:
        return []
    addresses = []
    for _family, _type, _proto, _canonical, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address is not None:
            addresses.append(address)
    return addresses


def _normalised(host: str | None) -> str | None:
    """Lower-case ASCII as the resolver will see it; None when no resolver could read it."""
    if host is None:
        return ""
    host = host.strip().strip("[]")
    if ":" in host:  # IPv6: not a name, IDNA does not apply
        return host.lower()
    try:
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except UnicodeError:
        return None
    return ascii_host.lower().rstrip(".")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or int(address) >> 32 == 0:  # NAT64, or the old "IPv4-compatible" ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
