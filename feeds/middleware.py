"""Transport security and failure limits for everything under /feed/.

In order, for each feed request:
0. A Host header outside ALLOWED_HOSTS gets 400 `bad_host` in JSON, checked here once, before
   anything else asks for the host (Django's CommonMiddleware would answer with its HTML page
   and log a traceback). One log line, without the header: it is whatever the client sent.
1. Plain HTTP is refused with 403 and a JSON error, never redirected: by the time a redirect is
   sent, the client has already put its token on the wire in clear. HTTPS is recognised behind a
   TLS proxy only when `TRUST_X_FORWARDED_PROTO` sets Django's `SECURE_PROXY_SSL_HEADER`.
2. A client address that failed too often recently gets 429 (`feeds.throttling`), before its
   credentials are looked at, so nobody can use the feeds to hammer Clerk's token service.
3. The view runs (DRF authenticates it: `feeds.authentication`). A 401 or 503 is counted
   against the client's address, except a 503 for Clerk's own outage (`request.clerk_outage`):
   an importer with a good token must not be locked out because Clerk was down.
4. Feed responses carry HSTS and are never stored by shared caches (they hold personal data
   and vary with the credentials).

`request.clerk_client_id` is None until a credential verified; the feed views read it.
`request.clerk_outage` is False unless Clerk gave no usable answer.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from feeds.errors import BadHost, HTTPSRequired, TooManyRequests, error_response
from feeds.throttling import FAILURE_STATUSES, AuthFailureThrottle

logger = logging.getLogger(__name__)

FEED_PREFIX = "/feed/"


def is_feed_path(path_info: str) -> bool:
    return path_info.startswith(FEED_PREFIX)


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
