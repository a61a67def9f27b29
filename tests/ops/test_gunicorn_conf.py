"""gunicorn.conf.py: worker count shared with the settings check, and an access log without secrets."""

from __future__ import annotations

import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gunicorn.conf.py"


@pytest.fixture
def load_conf():
    """Evaluate the config file under a given environment; os.environ is restored afterwards
    (the file itself sets CLERK_WEB_WORKERS, which must not leak into later tests' subprocesses).
    """
    saved = dict(os.environ)

    def load(**env: str) -> dict:
        for name in ("WEB_CONCURRENCY", "CLERK_WEB_WORKERS"):
            os.environ.pop(name, None)
        os.environ.update(env)
        return runpy.run_path(str(CONF))

    yield load
    os.environ.clear()
    os.environ.update(saved)


def test_workers_follow_the_cpu_count_unless_overridden(load_conf):
    assert load_conf()["workers"] == os.cpu_count() * 2 + 1
    assert load_conf(WEB_CONCURRENCY="3")["workers"] == 3


def test_the_worker_count_is_exported_for_the_settings_check(load_conf):
    load_conf(WEB_CONCURRENCY="3")
    assert os.environ["CLERK_WEB_WORKERS"] == "3"

    load_conf(WEB_CONCURRENCY="3", CLERK_WEB_WORKERS="12")  # several hosts: the operator's total
    assert os.environ["CLERK_WEB_WORKERS"] == "12"


def test_threaded_workers_with_graceful_restarts(load_conf):
    conf = load_conf()
    assert conf["worker_class"] == "gthread"
    assert conf["graceful_timeout"] >= 60
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]


def test_the_access_log_format_has_no_query_string_and_no_headers(load_conf):
    log_format = load_conf()["access_log_format"]
    # %(r)s is the request line with its query; %(q)s the query; %(u)s a Basic-auth user;
    # %(f)s and %(a)s and %({…}i)s are request headers.
    for field in ("%(r)s", "%(q)s", "%(u)s", "%(f)s", "%(a)s", "}i)s"):
        assert field not in log_format


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_gunicorn_logs_requests_without_their_secrets(tmp_path):
    port = _free_port()
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "WEB_CONCURRENCY": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": str(access_log),
        "DJANGO_SETTINGS_MODULE": "clerkfeeds.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(CONF)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/healthz?salt=s3cr3tsalt&hash=deadbeefcafe"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)

    log = access_log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "s3cr3tsalt" not in log and "deadbeefcafe" not in log and "?" not in log
