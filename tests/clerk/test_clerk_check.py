"""`manage.py clerk_check`: the right exit status and message for each state of a deployment."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.utils import timezone

from clerk.models import Action, ClerkDeletion, Reason, Status
from feeds.declarations import ProductFeed
from feeds.signals import page_served
from gdpr.models import SweepMark
from gdpr.sweep import sweep
from shop.models import Product
from tests.conftest import TEST_PRIVATE_KEY, TEST_PUBLIC_KEY
from tests.factories import CategoryFactory, CustomerFactory, OrderFactory, PageFactory, ProductFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB5 = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/5",
    }
}
# The fake Clerk listens on plain-HTTP loopback, which production settings refuse (rightly).
FAKE_CLERK_SILENCED = ["clerkfeeds.E011", "clerkfeeds.E012"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clerk_check(*args: str) -> tuple[int, str]:
    """Run the command as cron would; its exit status and what it printed."""
    out = io.StringIO()
    try:
        call_command("clerk_check", *args, stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, out.getvalue()


def by_name(output: str) -> dict[str, dict]:
    return {check["name"]: check for check in orjson.loads(output)["checks"]}


@pytest.fixture
def healthy(settings):
    """A production-like configuration: real secret, Redis cache, keys; the fake Clerk as Clerk."""
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, *FAKE_CLERK_SILENCED]
    settings.CACHES = REDIS_DB5
    settings.CLERK_WEB_WORKERS = 4
    category = CategoryFactory()
    ProductFactory.create_batch(3, categories=[category])
    PageFactory()
    OrderFactory()
    CustomerFactory()
    for offset, rows in ((0, 2), (2, 1)):
        page_served.send_robust(
            sender=None,
            feed="products",
            fmt="json",
            offset=offset,
            limit=2,
            rows=rows,
            bytes=100,
            duration=0.01,
            outcome="ok",
            client="importer",
            params={"limit": 2, "offset": offset},
        )
    sweep()  # as the clerk_sync worker does at start
    return settings


def test_a_healthy_deployment_exits_0_and_says_what_it_checked(healthy):
    status, output = clerk_check("--json")

    checks = by_name(output)
    assert status == 0, output
    assert {name: c["level"] for name, c in checks.items()} == {
        "settings": "ok",
        "database": "ok",
        "cache": "ok",
        "clerk_api": "ok",
        "feed:products": "ok",
        "feed:categories": "ok",
        "feed:orders": "ok",
        "feed:customers": "ok",
        "feed:pages": "ok",
        "outbox": "ok",
        "push": "ok",
        "gdpr_sweep": "ok",
        "imports": "ok",
        "rank_index": "ok",
    }
    assert "answered" in checks["clerk_api"]["message"]
    assert checks["feed:products"]["message"] == "first 3 object(s) valid"
    # The walk ended a moment ago: 0 s, or more on a busy machine.
    [detail] = checks["imports"]["details"]
    assert re.fullmatch(r"products last fetched by Clerk \d+ s ago, 3 objects", detail), detail
    assert orjson.loads(output)["exit_status"] == 0


def test_the_terminal_output_is_one_line_per_check_and_a_summary(healthy):
    status, output = clerk_check()

    lines = output.splitlines()
    assert status == 0
    assert lines[0].split()[:2] == ["OK", "settings"]
    assert lines[-1] == "clerk_check: 14 ok, 0 warning(s), 0 failure(s)"


def test_a_broken_database_exits_2_and_skips_what_needs_it(fake_clerk):
    # A fresh process whose DATABASE_URL points where no server listens: a real connection failure.
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/clerkfeeds_ops",
        "CLERK_API_URL": fake_clerk.url,
        "CLERK_PUBLIC_KEY": TEST_PUBLIC_KEY,
        "CLERK_PRIVATE_KEY": TEST_PRIVATE_KEY,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "clerk_check", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    checks = by_name(done.stdout)
    assert done.returncode == 2, done.stderr
    assert checks["database"]["level"] == "failure"
    assert checks["database"]["message"].startswith("database 'default' is unreachable: OperationalError")
    assert {checks[n]["level"] for n in ("feeds", "outbox", "gdpr_sweep", "imports", "rank_index")} == {"skipped"}
    assert checks["clerk_api"]["level"] == "ok"  # the rest is still checked


def test_an_unreachable_clerk_exits_2_and_says_so(healthy):
    healthy.CLERK_API_URL = f"http://127.0.0.1:{closed_port()}"

    status, output = clerk_check("--json")

    clerk = by_name(output)["clerk_api"]
    assert status == 2
    assert clerk["level"] == "failure"
    assert clerk["message"].startswith("Clerk's token service at 127.0.0.1:")
    assert "cannot be reached" in clerk["message"]


def test_a_clerk_answering_500_is_a_failure(healthy, fake_clerk):
    fake_clerk.behave("/token/verify", "error500")

    status, output = clerk_check("--json")

    assert status == 2
    assert "HTTP 500" in by_name(output)["clerk_api"]["message"]


def test_the_check_really_calls_clerk_with_the_configured_key(healthy, fake_clerk):
    clerk_check("--json")

    calls = fake_clerk.calls("/token/verify")
    assert len(calls) == 1
    assert calls[0].body["key"] == TEST_PUBLIC_KEY
    assert calls[0].body["token"].startswith("clerkfeeds-check-")


def test_a_stored_attribute_clerk_refuses_exits_1_naming_the_row(healthy):
    product = Product.objects.order_by("id").first()
    # Written straight to the JSON field, past the model's validators (as a raw import could).
    Product.objects.filter(pk=product.pk).update(attributes={"bad-name": "x", "color": "red"})

    status, output = clerk_check("--json")

    feed = by_name(output)["feed:products"]
    assert status == 1
    assert feed["level"] == "warning"
    assert feed["details"] == [
        f"products id {product.pk}: attribute 'bad-name' left out of the feed: "
        "its name is not made of A-Z, a-z, 0-9 and _"
    ]


def test_a_feed_object_breaking_clerks_rules_exits_2(healthy, monkeypatch):
    emit = ProductFeed.to_object

    def with_null(self, row):  # a declaration regression: a null sent instead of an omitted key
        return {**emit(self, row), "brand": None}

    monkeypatch.setattr(ProductFeed, "to_object", with_null)

    status, output = clerk_check("--json")

    feed = by_name(output)["feed:products"]
    assert status == 2
    assert feed["message"] == "3 violation(s) of Clerk's rules in the first 3 object(s)"
    assert "brand is null (omit the key instead)" in feed["details"][0]


def test_an_empty_products_feed_is_a_warning(healthy):
    Product.objects.all().delete()

    status, output = clerk_check("--json", "--skip", "imports")

    assert status == 1
    assert "Clerk would delete every product" in by_name(output)["feed:products"]["message"]


def test_a_per_process_cache_fails_with_several_workers_and_warns_with_one(healthy):
    healthy.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    several_status, several = clerk_check("--json", "--skip", "settings")
    healthy.CLERK_WEB_WORKERS = 1
    one_status, one = clerk_check("--json", "--skip", "settings")

    assert (several_status, by_name(several)["cache"]["level"]) == (2, "failure")
    assert "CLERK_WEB_WORKERS is 4" in by_name(several)["cache"]["message"]
    assert (one_status, by_name(one)["cache"]["level"]) == (1, "warning")


def _deletion(*, age: dt.timedelta, status: str = Status.PENDING, attempts: int = 0) -> ClerkDeletion:
    return ClerkDeletion.objects.create(
        action=Action.DELETE,
        object_type="customers",
        object_id=7,
        reason=Reason.WITHDRAWAL,
        status=status,
        created_at=timezone.now() - age,
        attempts=attempts,
    )


@pytest.mark.parametrize(
    ("age", "status", "level", "words"),
    [
        (dt.timedelta(minutes=1), Status.PENDING, "ok", "1 deletion(s) waiting, the oldest for 1 min"),
        (dt.timedelta(hours=2), Status.PENDING, "warning", "outbox slow"),
        (dt.timedelta(days=2), Status.PENDING, "failure", "outbox stuck"),
        (dt.timedelta(minutes=1), Status.FAILED, "failure", "refused by Clerk for good"),
        (dt.timedelta(days=9), Status.DELIVERED, "ok", "no deletion waiting"),
    ],
)
def test_the_outbox_check_follows_the_oldest_waiting_deletion(healthy, age, status, level, words):
    _deletion(age=age, status=status)

    _, output = clerk_check("--json")

    outbox = by_name(output)["outbox"]
    assert outbox["level"] == level
    assert words in outbox["message"]


def test_deletions_retried_many_times_are_a_warning(healthy):
    _deletion(age=dt.timedelta(minutes=2), attempts=6)

    status, output = clerk_check("--json")

    assert status == 1
    assert "1 retried 5+ times" in by_name(output)["outbox"]["message"]


def test_a_stale_import_is_a_warning(healthy):
    from feeds.models import ImportRun

    ImportRun.objects.update(finished_at=timezone.now() - dt.timedelta(days=3))

    status, output = clerk_check("--json")

    imports = by_name(output)["imports"]
    assert status == 1
    assert imports["message"] == "no complete import for 48 h: products"
    assert imports["details"] == ["products last fetched by Clerk 3 d ago, 3 objects"]


def test_an_insecure_setting_is_a_failure_naming_its_check(healthy):
    healthy.DEBUG = True

    status, output = clerk_check("--json")

    settings_check = by_name(output)["settings"]
    assert status == 2
    assert "clerkfeeds.E004" in settings_check["message"]


def test_a_failed_latest_walk_is_a_warning(healthy):
    page_served.send_robust(
        sender=None,
        feed="pages",
        fmt="json",
        offset=0,
        limit=None,
        rows=0,
        bytes=0,
        duration=0.01,
        outcome="failed",
        client="importer",
        params={},
    )

    status, output = clerk_check("--json")

    imports = by_name(output)["imports"]
    assert status == 1
    assert imports["message"] == "latest walk failed: pages"
    assert "pages: latest walk failed" in imports["details"]


@pytest.mark.parametrize(
    "setting, value, named",
    [
        ("CLERK_DATA_PURPOSE", "marketing", "CLERK_DATA_PURPOSE is 'marketing', swept under 'personalisation'"),
        ("GDPR_RECENT_DAYS", 365, "GDPR_RECENT_DAYS is 365, swept under 730"),
    ],
)
def test_settings_no_sweep_reconciled_fail_until_the_next_sweep(healthy, setting, value, named):
    setattr(healthy, setting, value)

    status, output = clerk_check("--json")

    check = by_name(output)["gdpr_sweep"]
    assert status == 2
    assert "run manage.py gdpr_sweep, or restart the clerk_sync worker" in check["message"]
    assert check["details"] == [named]

    call_command("gdpr_sweep", stdout=io.StringIO())
    status, output = clerk_check("--json")
    assert status == 0, output
    assert by_name(output)["gdpr_sweep"]["level"] == "ok"


def test_no_sweep_ever_or_none_lately_is_a_failure(healthy):
    SweepMark.objects.update(swept_at=timezone.now() - dt.timedelta(hours=27))
    status, output = clerk_check("--json")
    assert status == 2
    assert by_name(output)["gdpr_sweep"]["message"].startswith(
        "no reconciliation with the GDPR policy for 1 d (over 26 h)"
    )
    status, _ = clerk_check("--json", "--sweep-max-age-hours", "48")
    assert status == 0

    SweepMark.objects.all().delete()
    status, output = clerk_check("--json")
    assert status == 2
    assert by_name(output)["gdpr_sweep"]["message"].startswith("Clerk's copy was never reconciled")
