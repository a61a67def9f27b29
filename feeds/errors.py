"""Feed errors: every failure a feed request can meet, and the one place that renders them.

Other code only raises. The body is always JSON `{"error": "<code>", "detail": "<sentence>"}`
(never HTML, never something that parses as a feed), codes are stable snake_case.
"""

from __future__ import annotations

import logging

import orjson
from django.http import HttpResponse
from rest_framework import exceptions as drf_exceptions

logger = logging.getLogger(__name__)


class FeedError(Exception):
    status = 400
    code = "bad_request"
    detail = "The request could not be served."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        self.detail = detail or self.detail
        self.code = code or self.code
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadParameter(FeedError):
    status = 400
    code = "bad_parameter"


class BadHost(FeedError):
    status = 400
    code = "bad_host"
    detail = "This service does not answer for that Host header."


class NotAuthenticated(FeedError):
    status = 401
    code = "not_authenticated"
    detail = "Valid Clerk credentials are required."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(
            detail, code=code, headers={"WWW-Authenticate": 'Bearer realm="clerkfeeds"', **(headers or {})}
        )


class HTTPSRequired(FeedError):
    status = 403
    code = "https_required"
    detail = "Feeds are served over HTTPS only."


class FeedNotFound(FeedError):
    status = 404
    code = "feed_not_found"
    detail = "There is no such feed."


class MethodNotAllowed(FeedError):
    status = 405
    code = "method_not_allowed"
    detail = "Feeds answer GET and HEAD only."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail, code=code, headers={"Allow": "GET, HEAD", **(headers or {})})


class TooManyRequests(FeedError):
    status = 429
    code = "too_many_requests"
    detail = "Too many failed attempts; try again later."


class ClerkUnavailable(FeedError):
    status = 503
    code = "clerk_unavailable"
    detail = "Clerk's token service cannot be reached; try again shortly."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        retry_after: int = 30,
    ):
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after), **(headers or {})})


def error_response(error: FeedError) -> HttpResponse:
    """Render a `FeedError` as its JSON response, headers included."""
    response = HttpResponse(
        orjson.dumps({"error": error.code, "detail": error.detail}),
        status=error.status,
        content_type="application/json",
    )
    for name, value in error.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def from_drf(exc: Exception) -> FeedError | None:
    """Translate DRF's own exceptions (raised by its authentication and throttling) to ours."""
    if isinstance(exc, FeedError):
        return exc
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 60)
        return TooManyRequests(headers={"Retry-After": str(max(wait, 1))})
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return NotAuthenticated()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed()
    if isinstance(exc, drf_exceptions.NotFound):
        return FeedNotFound()
    if isinstance(exc, drf_exceptions.APIException):
        error = FeedError(str(exc.detail))
        error.status = exc.status_code
        return error
    return None


def exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: every error of a feed view becomes the contract's JSON."""
    error = from_drf(exc)
    if error is None:
        return None  # not ours: let Django's 500 handling (and logging) take it
    return error_response(error)
