"""Health endpoints for load balancers, orchestrators and the Docker HEALTHCHECK.

* `healthz` (`GET /healthz`): the process is alive and answers (no I/O at all).
* `readyz` (`GET /readyz`): every configured database answers a trivial query and the cache
  stores and returns a value; 503 otherwise, naming only the failed component.

No credentials, nothing about the service (no versions, counts or settings). Probes come over
plain HTTP with foreign Host headers, so `HealthEndpointsMiddleware`, first in MIDDLEWARE,
answers `HEALTH_PATHS` before Host validation and the HTTPS redirect (also routed in urls.py).
See docs/operations.md ("Health endpoints").
"""

from __future__ import annotations

import logging
import uuid

import orjson
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/readyz")


def _json(payload: dict, *, status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")
    # A cached "ok" would hide an outage from the next probe.
    response["Cache-Control"] = "no-store"
    return response


def _method_not_allowed() -> HttpResponse:
    response = _json(
        {"error": "method_not_allowed", "detail": "Health endpoints answer GET and HEAD only."},
        status=405,
    )
    response["Allow"] = "GET, HEAD"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving requests."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed()
    return _json({"status": "ok"})


def database_reachable(alias: str) -> bool:
    """One trivial query on the connection `alias`."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception as exc:  # any failure means "not ready"; the probe itself must answer
        logger.warning("readiness: database unreachable", extra={"alias": alias, "error": type(exc).__name__})
        return False


def cache_reachable() -> bool:
    """A set and a get of a unique value round-trips through the default cache."""
    key = f"clerkfeeds:readyz:{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=10)
        ok = cache.get(key) == value
        cache.delete(key)
    except Exception as exc:  # a Redis connection error, a timeout: "not ready"
        logger.warning("readiness: cache unreachable", extra={"error": type(exc).__name__})
        return False
    if not ok:
        logger.warning("readiness: cache did not return what was stored")
    return ok


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve feeds: databases and cache reachable. 503 names what failed, nothing else."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed()
    failed = [f"database {alias}" for alias in connections if not database_reachable(alias)]
    if not cache_reachable():
        failed.append("cache")
    if failed:
        return _json(
            {"error": "not_ready", "detail": f"Not ready: {', '.join(failed)} unreachable."},
            status=503,
        )
    return _json({"status": "ok"})


_VIEWS = {"/healthz": healthz, "/readyz": readyz}


class HealthEndpointsMiddleware:
    """Answer the health paths before host validation and the HTTPS redirect (docs/operations.md)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
