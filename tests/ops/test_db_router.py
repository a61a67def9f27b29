"""The optional read replica: catalogue reads of feed requests only; personal data from the primary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from feeds.db_router import (
    FeedReadReplicaRouter,
    FeedReplicaReadsMiddleware,
    replica_reads,
    replica_reads_active,
)
from gdpr.models import ConsentRecord
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory

ROOT = Path(__file__).resolve().parents[2]
router = FeedReadReplicaRouter()

CATALOGUE = [Product, Category, ProductCategory, Page]
PERSONAL = [Customer, Order, OrderLine, ConsentRecord]


@pytest.mark.parametrize("model", CATALOGUE)
def test_catalogue_reads_go_to_the_replica_only_inside_replica_reads(model):
    assert router.db_for_read(model) == "default"
    with replica_reads():
        assert router.db_for_read(model) == "replica"
    assert router.db_for_read(model) == "default"


@pytest.mark.parametrize("model", PERSONAL)
def test_personal_data_is_always_read_from_the_primary(model):
    with replica_reads():
        assert router.db_for_read(model) == "default"


@pytest.mark.parametrize("model", CATALOGUE + PERSONAL)
def test_writes_always_go_to_the_primary(model):
    with replica_reads():
        assert router.db_for_write(model) == "default"


def test_the_replica_is_never_migrated():
    assert router.allow_migrate("replica", "shop") is False
    assert router.allow_migrate("default", "shop") is None


def _run(middleware_view, path: str, method: str = "get") -> list[bytes]:
    request = getattr(RequestFactory(), method)(path)
    response = FeedReplicaReadsMiddleware(middleware_view)(request)
    seen = [b"".join(response.streaming_content)] if response.streaming else [response.content]
    return seen


def test_a_streamed_feed_body_is_produced_inside_replica_reads():
    during_view: list[bool] = []
    during_stream: list[bool] = []

    def chunks():
        for _ in range(3):
            during_stream.append(replica_reads_active())
            yield b"x"

    def view(request):
        during_view.append(replica_reads_active())
        return StreamingHttpResponse(chunks())

    body = _run(view, "/feed/products.json")

    assert body == [b"xxx"]
    assert during_view == [True]
    assert during_stream == [True, True, True]
    assert replica_reads_active() is False  # nothing leaks into the server's own context


@pytest.mark.parametrize(("path", "method"), [("/admin/shop/product/", "get"), ("/feed/products.json", "post")])
def test_other_requests_read_the_primary(path, method):
    seen: list[bool] = []

    def view(request):
        seen.append(replica_reads_active())
        return HttpResponse(b"")

    _run(view, path, method)

    assert seen == [False]


def test_with_a_replica_configured_feed_reads_of_the_catalogue_see_the_replica(tmp_path):
    """End to end in a fresh process: settings, router and ORM, with two real SQLite files.

    The replica is a copy of the primary taken before a write, so it lags by exactly that write.
    """
    primary, replica = tmp_path / "primary.sqlite3", tmp_path / "replica.sqlite3"
    script = textwrap.dedent(
        f"""
        import json, shutil, django
        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django.utils import timezone
        from feeds.db_router import replica_reads
        from shop.models import Customer, Product

        call_command("migrate", verbosity=0)
        connections.close_all()
        shutil.copyfile({str(primary)!r}, {str(replica)!r})  # the replica, before the writes below

        Product.objects.create(id=1, name="new", price=1, image="https://s/i", url="https://s/p",
                               created_at=timezone.now())
        Customer.objects.create(id=1, name="new")
        from django.conf import settings
        result = {{
            "outside": Product.objects.filter(pk=1).exists(),
            "middleware": "feeds.db_router.FeedReplicaReadsMiddleware" in settings.MIDDLEWARE,
        }}
        with replica_reads():
            result["catalogue_inside"] = Product.objects.filter(pk=1).exists()
            result["customer_inside"] = Customer.objects.filter(pk=1).exists()
        print(json.dumps(result))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clerkfeeds.settings",
        "DATABASE_URL": f"sqlite:///{primary}",
        "DATABASE_REPLICA_URL": f"sqlite:///{replica}",
    }
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "middleware": True,  # feed requests enter replica_reads()
        "outside": True,  # the primary has it
        "catalogue_inside": False,  # the lagging replica does not yet
        "customer_inside": True,  # personal data: always the primary
    }
