"""Transport security for everything under /feed/.

Plain HTTP is refused with 403 and a JSON error, never redirected: by the time a redirect is
sent, the client has already put its token on the wire in clear. HTTPS is recognised behind a
TLS proxy only when `TRUST_X_FORWARDED_PROTO` sets Django's `SECURE_PROXY_SSL_HEADER`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from feeds.errors import HTTPSRequired, error_response

FEED_PREFIX = "/feed/"


class FeedSecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(FEED_PREFIX) and not request.is_secure():
            return error_response(HTTPSRequired())
        return self.get_response(request)
