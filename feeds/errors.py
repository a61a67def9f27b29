"""Feed errors: every failure a feed request can meet, as DRF exceptions, and their one rendering.

Other code only raises a `FeedError`; DRF hands it to `exception_handler` (REST_FRAMEWORK's
EXCEPTION_HANDLER), and the middleware and Django's error handlers call `error_response`. The
body is always JSON `{"error": "<code>", "detail": "<sentence>"}` (never HTML, never something
that parses as a feed); codes are stable snake_case. `REALM` names the feeds' auth realm.
"""

from __future__ import annotations

import orjson
from django.http import HttpResponse
from rest_framework.exceptions import APIException

REALM = "clerkfeeds"


class FeedError(APIException):
    """A feed request's failure: `status` (DRF's `status_code`), `code`, `detail`, `headers`."""

    status_code = 400
    default_code = "bad_request"
    default_detail = "The request could not be served."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        self.code = code or self.default_code
        super().__init__(detail or self.default_detail, self.code)
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.status_code


class BadParameter(FeedError):
    status_code = 400
    default_code = "bad_parameter"


class BadHost(FeedError):
    status_code = 400
    default_code = "bad_host"
    default_detail = "This service does not answer for that Host header."


class NotAuthenticated(FeedError):
    status_code = 401
    default_code = "not_authenticated"
    default_detail = "Valid Clerk credentials are required."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail, code=code, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"', **(headers or {})})


class HTTPSRequired(FeedError):
    status_code = 403
    default_code = "https_required"
    default_detail = "Feeds are served over HTTPS only."


class FeedNotFound(FeedError):
    status_code = 404
    default_code = "feed_not_found"
    default_detail = "There is no such feed."


class MethodNotAllowed(FeedError):
    status_code = 405
    default_code = "method_not_allowed"
    default_detail = "Feeds answer GET and HEAD only."

    def __init__(self, detail: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail, code=code, headers={"Allow": "GET, HEAD", **(headers or {})})


class TooManyRequests(FeedError):
    status_code = 429
    default_code = "too_many_requests"
    default_detail = "Too many failed attempts; try again later."


class ClerkUnavailable(FeedError):
    status_code = 503
    default_code = "clerk_unavailable"
    default_detail = "Clerk's token service cannot be reached; try again shortly."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        retry_after: int = 30,
    ):
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after), **(headers or {})})


class ServerError(FeedError):
    status_code = 500
    default_code = "server_error"
    default_detail = "The feed could not be served; try again later."


def error_response(error: FeedError) -> HttpResponse:
    """Render a `FeedError` as its JSON response, headers included."""
    response = HttpResponse(
        orjson.dumps({"error": error.code, "detail": str(error.detail)}),
        status=error.status_code,
        content_type="application/json",
    )
    for name, value in error.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: a `FeedError` becomes its JSON response.

    Anything else is not ours: None lets Django's 500 handling (and logging) take it, which
    answers JSON under /feed/ (`feeds.views.server_error`).
    """
    if isinstance(exc, FeedError):
        return error_response(exc)
    return None
