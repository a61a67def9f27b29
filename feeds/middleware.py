"""Transport security and failure limits for everything under `FEED_PREFIX` (/feed/).

In order: a Host outside ALLOWED_HOSTS is a JSON 400 `bad_host`; plain HTTP a JSON 403 (never a
redirect: the token is already on the wire); an address that failed too often a 429
(`feeds.throttling`), before its credentials are looked at. Then the view runs (DRF
authenticates it: `feeds.authentication`); its 401 or 503 counts against the address, unless
Clerk itself was out. Feed responses carry HSTS and are never stored by shared caches.
`request.clerk_client_id` (None until a credential verified) and `request.clerk_outage` are set
on the Django request through `request.feed_caller` (a `FeedCaller`), whatever wraps it.
Details: docs/security.md.
"""

from __future__ import annotations

import logging
import weakref

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from feeds.errors import BadHost, HTTPSRequired, TooManyRequests, error_response
from feeds.throttling import FAILURE_STATUSES, AuthFailureThrottle

logger = logging.getLogger(__name__)

FEED_PREFIX = "/feed/"


def is_feed_path(path_info: str) -> bool:
    return path_info.startswith(FEED_PREFIX)


class FeedCaller:
    """Where authentication reports what it learned about a feed request: onto the Django
    request itself, so that the views, this middleware and the tests read plain attributes."""

    __slots__ = ("_request",)

    def __init__(self, request: HttpRequest):
        self._request = weakref.ref(request)

    def identified(self, client_id: str) -> None:
        request = self._request()
        if request is not None:
            request.clerk_client_id = client_id

    def clerk_outage(self) -> None:
        request = self._request()
        if request is not None:
            request.clerk_outage = True


class FeedSecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.hsts = _hsts_header(
            settings.SECURE_HSTS_SECONDS,
            include_subdomains=settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
            preload=settings.SECURE_HSTS_PRELOAD,
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_feed_path(request.path_info):
            return self.get_response(request)
        request.clerk_client_id = None
        request.clerk_outage = False
        request.feed_caller = FeedCaller(request)
        try:
            request.get_host()
        except DisallowedHost:
            logger.warning("feed request refused: Host not allowed", extra={"path": request.path_info[:200]})
            return error_response(BadHost())
        if not request.is_secure():
            return error_response(HTTPSRequired())
        throttle = AuthFailureThrottle()
        if not throttle.allow_request(request):
            return self._secure(error_response(TooManyRequests(headers={"Retry-After": str(throttle.retry_after())})))
        response = self.get_response(request)
        if response.status_code in FAILURE_STATUSES and not request.clerk_outage:
            throttle.record_failure(request)
        return self._secure(response)

    def _secure(self, response: HttpResponse) -> HttpResponse:
        if self.hsts and "Strict-Transport-Security" not in response:
            response["Strict-Transport-Security"] = self.hsts
        if "Cache-Control" not in response:
            response["Cache-Control"] = "private, no-store"
        return response


def _hsts_header(seconds: int, *, include_subdomains: bool, preload: bool) -> str | None:
    if not seconds:
        return None
    value = f"max-age={int(seconds)}"
    if include_subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value
