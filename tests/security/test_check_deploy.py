"""`manage.py check --deploy` passes with the documented production environment and fails on a
leak-prone one (a real subprocess: settings are read from the environment as in production)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The production environment documented in the README (values are placeholders of the right shape).
PRODUCTION = {
    "DJANGO_SECRET_KEY": "kV3q9-production-secret-from-the-vault-Xb7tR2mW8zL4nP6sD1fG5hJ0cY",
    "DJANGO_ALLOWED_HOSTS": "feeds.shop.example",
    "DATABASE_URL": "postgres://clerkfeeds:secret@db.internal:5432/clerkfeeds",
    "CACHE_URL": "redis://redis.internal:6379/1",
    "CLERK_PUBLIC_KEY": "public-key-from-my-clerk-io",
    "CLERK_PRIVATE_KEY": "private-key-from-my-clerk-io",
    "TRUST_X_FORWARDED_PROTO": "1",
    "DJANGO_NUM_PROXIES": "1",
    "CLERK_WEB_WORKERS": "4",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CLERK_", "GDPR_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("CACHE_URL", None)
    clean.pop("TRUST_X_FORWARDED_PROTO", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_passes_with_the_production_environment():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "clerkfeeds." not in result.stderr + result.stdout


def test_check_deploy_fails_on_a_leak_prone_environment():
    # No DJANGO_SECRET_KEY: the insecure development key is used.
    leaky = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"} | {
        "CLERK_PUBLIC_KEY": "",
        "CLERK_PRIVATE_KEY": "",
        "CLERK_API_URL": "http://127.0.0.1:8765",
        "CACHE_URL": "locmemcache://",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "CLERK_FEED_BASIC_AUTH": "clerk:",
        "DJANGO_ALLOWED_HOSTS": "feeds.shop.example,*",
        "GDPR_RECENT_DAYS": "5000",
    }
    result = check_deploy(leaky)
    assert result.returncode == 1
    for expected in ("E001", "E002", "E003", "E006", "E008", "E010", "E011", "E012", "E017"):
        assert f"clerkfeeds.{expected}" in result.stderr
    assert "gdpr.E003" in result.stderr


def test_check_deploy_refuses_a_loopback_clerk_in_a_short_spelling():
    result = check_deploy({**PRODUCTION, "CLERK_API_URL": "https://127.1/v2"})
    assert result.returncode == 1
    assert "clerkfeeds.E012" in result.stderr


def test_check_deploy_warns_when_the_proxy_count_is_unset_behind_a_tls_proxy():
    result = check_deploy({k: v for k, v in PRODUCTION.items() if k != "DJANGO_NUM_PROXIES"})
    assert result.returncode == 0
    assert "clerkfeeds.W004" in result.stderr


def test_check_deploy_fails_with_debug_on():
    result = check_deploy({**PRODUCTION, "DJANGO_DEBUG": "1"})
    assert result.returncode == 1
    assert "clerkfeeds.E004" in result.stderr
