"""/healthz and /readyz: no credentials, no data, and an honest 503 when a dependency is down."""

from __future__ import annotations

import logging
import socket

import orjson
import pytest
from django.db.utils import ConnectionHandler
from django.test import Client, override_settings

from clerkfeeds import health
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def anonymous() -> Client:
    """A caller with no credentials at all, over plain HTTP, as a load balancer probes."""
    return Client()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_without_credentials(anonymous, path):
    response = anonymous.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_bodies_expose_nothing(anonymous, path):
    ProductFactory.create_batch(3)
    CustomerFactory(email="someone@example.com")

    response = anonymous.get(path)

    # Exactly this, whatever the data, versions or settings: no counts, no names, no config.
    assert orjson.loads(response.content) == {"status": "ok"}
    assert not {"server", "x-powered-by", "x-version", "x-runtime"} & {n.lower() for n in response.headers}
    assert not any(word in value for value in response.headers.values() for word in ("Django", "Python", "gunicorn"))


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_with_a_foreign_host_over_plain_http_are_answered(settings, anonymous, path):
    settings.ALLOWED_HOSTS = ["shop.example"]
    settings.SECURE_SSL_REDIRECT = True

    probe = anonymous.get(path, HTTP_HOST="10.1.2.3:8000")
    other = anonymous.get("/admin/login/", HTTP_HOST="10.1.2.3:8000")

    assert probe.status_code == 200
    assert other.status_code == 400  # the same host is refused anywhere else


def test_health_endpoints_refuse_other_methods(anonymous):
    response = anonymous.post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert orjson.loads(response.content)["error"] == "method_not_allowed"


def _unreachable_database_settings(default: dict) -> dict:
    broken = dict(default)
    if default["ENGINE"].endswith("sqlite3"):
        broken["NAME"] = "/nonexistent-directory/clerkfeeds.sqlite3"
    else:
        broken.update(HOST="127.0.0.1", PORT=str(closed_port()))
    broken["CONN_MAX_AGE"] = 0
    return broken


def test_readyz_is_503_when_the_database_is_unreachable(monkeypatch, anonymous, caplog):
    from django.db import connections

    # A real connection attempt that fails: the same engine, pointed where nothing answers.
    broken = ConnectionHandler({"default": _unreachable_database_settings(connections["default"].settings_dict)})
    monkeypatch.setattr(health, "connections", broken)

    with caplog.at_level(logging.WARNING, logger="clerkfeeds.health"):
        response = anonymous.get("/readyz")

    assert response.status_code == 503
    assert orjson.loads(response.content) == {
        "error": "not_ready",
        "detail": "Not ready: database default unreachable.",
    }
    assert [r.error for r in caplog.records if r.name == "clerkfeeds.health"] == ["OperationalError"]
    assert anonymous.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_is_503_when_the_cache_is_unreachable(anonymous):
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/5",
        }
    }
    with override_settings(CACHES=dead_redis):
        response = anonymous.get("/readyz")

    assert response.status_code == 503
    assert orjson.loads(response.content)["detail"] == "Not ready: cache unreachable."


def test_readyz_is_ok_with_a_shared_redis_cache(anonymous):
    redis_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/5",
        }
    }
    with override_settings(CACHES=redis_cache):
        response = anonymous.get("/readyz")

    assert response.status_code == 200
