"""`.env.example`, its placeholders filled (scripts/fill-env), passes `check --deploy` with the
database and cache URLs that compose.yaml gives the services; every setting is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
# What compose.yaml's app services add to the env file (asserted against compose.yaml below).
COMPOSE_ENVIRONMENT = {
    "DATABASE_URL": "postgres://clerkfeeds:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@db:5432/clerkfeeds",
    "CACHE_URL": "redis://redis:6379/1",
}


def filled_example() -> dict[str, str]:
    text = subprocess.run(
        [sys.executable, "scripts/fill-env", str(EXAMPLE)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_compose_gives_the_services_these_urls():
    compose = (ROOT / "compose.yaml").read_text()
    for name, value in COMPOSE_ENVIRONMENT.items():
        assert f"    {name}: {value}\n" in compose


def test_the_filled_example_passes_check_deploy():
    env = filled_example()
    password = env["POSTGRES_PASSWORD"]
    env |= {
        name: value.replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", password)
        for name, value in COMPOSE_ENVIRONMENT.items()
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CLERK_", "GDPR_"))}
    for name in ("DATABASE_URL", "CACHE_URL", "TRUST_X_FORWARDED_PROTO", "WEB_CONCURRENCY"):
        clean.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_example_has_placeholders_not_secrets():
    values = dict(line.split("=", 1) for line in EXAMPLE.read_text().splitlines() if line and not line.startswith("#"))
    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "CLERK_PUBLIC_KEY", "CLERK_PRIVATE_KEY"):
        assert re.fullmatch(r"<[^<>]+>", values[name]), name


def test_every_setting_is_documented_by_the_comment_above_it():
    above = ""  # the nearest line above that is not a setting (pairs like the two keys share one)
    for line in EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            assert above.startswith("#"), f"{line.split('=')[0]} has no comment"
        else:
            above = line


def test_an_unknown_placeholder_is_refused_naming_its_line(tmp_path):
    example = tmp_path / "env"
    example.write_text("# a comment\nSOMETHING=<fill me>\n")
    result = subprocess.run(
        [sys.executable, "scripts/fill-env", str(example)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "line 2: no value for the placeholder of SOMETHING" in result.stderr
