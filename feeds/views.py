"""The one generic feed view (`FeedView`), and JSON 400/404/500 pages for everything under /feed/.

`FeedView` is a DRF `APIView` with REST_FRAMEWORK's default authentication, permission and
throttle classes; DRF's own refusals (405, permission, throttle) are raised as `feeds.errors`
exceptions, so every error takes one path: `feeds.errors.exception_handler`. The view only
translates HTTP into a feed request (feed, format, parameters, who asks); `feeds.stream` does
the rest. When the server closes the response, after its last byte, the view sends
`feeds.signals.page_served` and logs one `feeds.access` line (never a token, hash, email or
name); not earlier, so nothing holds back the chunked body's end (docs/feeds.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views import defaults
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from feeds import encoding
from feeds.errors import (
    BadParameter,
    FeedError,
    FeedNotFound,
    MethodNotAllowed,
    NotAuthenticated,
    ServerError,
    TooManyRequests,
    error_response,
)
from feeds.middleware import FEED_PREFIX
from feeds.params import FeedParams, parse_params
from feeds.proxies import client_address
from feeds.registry import FEEDS, SINGLE_FEED, feed_class
from feeds.signals import page_served
from feeds.stream import FeedStream, feed_chunks

access_log = logging.getLogger("feeds.access")

NDJSON_MEDIA_TYPE = encoding.CONTENT_TYPES[encoding.NDJSON]


class _FormatChosenByView(BaseContentNegotiation):
    """The view writes its own bytes and picks JSON or NDJSON itself: DRF must not answer 406."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FeedView(APIView):
    """`GET|HEAD /feed/<feed>.json` and `/feed/<feed>.ndjson`; every other method is a 405."""

    http_method_names = ["get", "head"]
    content_negotiation_class = _FormatChosenByView

    def get(self, request: Request, feed: str | None = None, fmt: str | None = None) -> HttpResponseBase:
        return self.serve(request, feed, fmt, head=False)

    # DRF's refusals, raised as feed errors (DRF's hooks for them).
    def http_method_not_allowed(self, request: Request, *args, **kwargs):
        raise MethodNotAllowed()

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None):
        raise NotAuthenticated()

    def throttled(self, request: Request, wait: float | None):
        raise TooManyRequests(headers={"Retry-After": str(max(int(wait or 60), 1))})

    def head(self, request: Request, feed: str | None = None, fmt: str | None = None) -> HttpResponseBase:
        return self.serve(request, feed, fmt, head=True)

    def serve(self, request: Request, feed: str | None, fmt: str | None, *, head: bool) -> HttpResponseBase:
        started = time.monotonic()
        fmt = self.chosen_format(request, feed, fmt)
        params = parse_params(request.query_params)
        if feed == SINGLE_FEED and params.paged:
            raise BadParameter(
                "The single feed is not paged: drop limit and offset, or use the per-type feeds.",
                code="single_feed_not_paged",
            )
        client = client_identity(request)
        if head:
            # Streaming, so that no Content-Length: 0 misdescribes the GET's body.
            response: HttpResponseBase = StreamingHttpResponse(iter(()), content_type=encoding.CONTENT_TYPES[fmt])
            _log(feed=feed, fmt=fmt, params=params, rows=0, size=0, started=started, outcome="head", client=client)
        else:
            stream = feed_chunks(feed, params=params, fmt=fmt, client=client)
            response = StreamingHttpResponse(
                ReportedBody(stream, started=started, client=client), content_type=stream.content_type
            )
        # Customers and orders are personal data: no shared cache may keep a copy.
        response["Cache-Control"] = "no-store"
        # Let a buffering proxy (nginx) pass the stream through as it is produced.
        response["X-Accel-Buffering"] = "no"
        if feed != SINGLE_FEED:
            response["Vary"] = "Accept"
        return response

    @staticmethod
    def chosen_format(request: Request, feed: str | None, fmt: str | None) -> str:
        """The body's format, from the path and the Accept header; `FeedNotFound` for a bad path."""
        if feed is None or fmt is None:
            raise FeedNotFound(
                f"There is no such feed; try /feed/<type>.json with a type among {', '.join([*FEEDS, SINGLE_FEED])}."
            )
        if feed == SINGLE_FEED:
            if fmt != encoding.JSON:
                raise FeedNotFound("The single feed is one JSON object: /feed/all.json.")
            return fmt
        feed_class(feed)  # FeedNotFound for an unknown type
        if fmt == encoding.JSON and _prefers_ndjson(request):
            return encoding.NDJSON
        return fmt


class UnknownFeedView(FeedView):
    """Any other path under /feed/: a JSON 404 (after authentication, so probes learn nothing)."""

    schema = None  # not an endpoint of the API description


def client_identity(request: HttpRequest | Request) -> str:
    """Who asks, for cursors and logs: the security layer's `clerk_client_id`, else the address."""
    return getattr(request, "clerk_client_id", None) or client_address(request)


def _prefers_ndjson(request: Request) -> bool:
    if "HTTP_ACCEPT" not in request.META:
        return False
    return request.get_preferred_type([encoding.CONTENT_TYPES[encoding.JSON], NDJSON_MEDIA_TYPE]) == NDJSON_MEDIA_TYPE


class ReportedBody:
    """`stream`'s chunks as a response body; reported (signal and log line) when it is closed.

    The outcome is "ok" only when the stream was read to its end; the duration runs from the
    view's start to the end of the body (its last chunk, or the failure), not to the close.
    Django registers `close()` with the response, whose own `close()` the server calls once the
    response is finished; it is reported once, whatever calls it.
    """

    def __init__(self, stream: FeedStream, *, started: float, client: str):
        self._stream = stream
        self._started = started
        self._client = client
        self._outcome: str | None = None
        self._ended: float | None = None
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._stream)
        except StopIteration:
            self._end("ok")
            raise
        except BaseException:
            self._end("failed")
            raise

    def _end(self, outcome: str) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._ended = time.monotonic()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.close()
        finally:
            self._end("failed")  # closed before its end: the client went away, or the server gave up
            self._report()

    def _report(self) -> None:
        stream = self._stream
        page_served.send_robust(
            sender=FeedView,
            feed=stream.name,
            fmt=stream.fmt,
            offset=stream.params.offset,
            limit=stream.params.limit,
            rows=stream.rows,
            bytes=stream.bytes,
            duration=self._ended - self._started,
            outcome=self._outcome,
            client=self._client,
            params=stream.params.as_dict(),
        )
        _log(
            feed=stream.name,
            fmt=stream.fmt,
            params=stream.params,
            rows=stream.rows,
            size=stream.bytes,
            started=self._started,
            outcome=self._outcome,
            client=self._client,
            ended=self._ended,
        )


def _log(
    *,
    feed: str,
    fmt: str,
    params: FeedParams,
    rows: int,
    size: int,
    started: float,
    outcome: str,
    client: str,
    ended: float | None = None,
) -> None:
    access_log.info(
        "feed page served",
        extra={
            "feed": feed,
            "fmt": fmt,
            "offset": params.offset,
            "limit": params.limit,
            "rows": rows,
            "bytes": size,
            "duration_ms": round(((ended or time.monotonic()) - started) * 1000, 1),
            "outcome": outcome,
            "client": client,
        },
    )


# --- Django's error pages, as the feed contract's JSON under /feed/ ----------------------------
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler400` (Django's SuspiciousOperation, e.g. too many query fields): JSON under /feed/."""
    if request.path.startswith(FEED_PREFIX):
        return error_response(FeedError())
    return defaults.bad_request(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: JSON under /feed/, Django's page elsewhere."""
    if request.path.startswith(FEED_PREFIX):
        return error_response(FeedNotFound())
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """`handler500`: JSON under /feed/ (never a body that could pass for a feed), Django's elsewhere."""
    if request.path.startswith(FEED_PREFIX):
        return error_response(ServerError())
    return defaults.server_error(request)
