"""Who the client is, behind the proxies we trust: one answer for the feeds' failure limit and
the admin's login lock-out (django-axes' `AXES_CLIENT_IP_CALLABLE`).

Each proxy in front appends the address it saw to `X-Forwarded-For`, so with `NUM_PROXIES` = n
the n-th entry from the right was written by our outermost proxy: the real client. Entries to
its left are whatever the client sent and never count. `NUM_PROXIES` unset means one proxy when
`TRUST_X_FORWARDED_PROTO` is on (the TLS proxy), none otherwise; 0 means the socket's address.
A header shorter than n entries, or an entry that is not an address, did not come through our
proxies as configured: the socket's address counts then (clients share a limit; none escapes it).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

UNKNOWN = "unknown"


def trusted_proxies() -> int:
    """How many proxies in front append to X-Forwarded-For (see the module docstring)."""
    count = settings.NUM_PROXIES
    if count is None:
        return 1 if settings.TRUST_X_FORWARDED_PROTO else 0
    return max(count, 0)


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address, normalised; None when not even the socket gives one."""
    count = trusted_proxies()
    if count:
        entries = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(entries) >= count:
            address = _address(entries[-count])
            if address is not None:
                return address
    return _address(str(request.META.get("REMOTE_ADDR") or ""))


def client_address(request: HttpRequest) -> str:
    """`client_ip`, or "unknown": a key for limits and logs, never empty."""
    return client_ip(request) or UNKNOWN


def _address(entry: str) -> str | None:
    entry = entry.strip()
    if entry.startswith("["):  # "[v6]" or "[v6]:port", as some proxies write it
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:  # "v4:port"
        entry = entry.partition(":")[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None
