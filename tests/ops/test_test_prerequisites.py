"""The test session's own prerequisites fail or skip with a message naming what is missing."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from tests import conftest


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session() -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace())


def browser_item() -> SimpleNamespace:
    return SimpleNamespace(get_closest_marker=lambda name: pytest.mark.browser if name == "browser" else None)


def test_redis_answers_on_the_test_address():
    assert conftest.redis_answers(conftest.REDIS_ADDRESS)
    assert not conftest.redis_answers(("127.0.0.1", closed_port()))


def test_the_session_stops_naming_redis_when_nothing_answers(monkeypatch):
    monkeypatch.setattr(conftest, "REDIS_ADDRESS", ("127.0.0.1", closed_port()))
    with pytest.raises(pytest.exit.Exception, match="need Redis on 127.0.0.1:") as stop:
        conftest.pytest_sessionstart(session())
    assert stop.value.returncode == 3


def test_the_session_starts_when_redis_answers():
    conftest.pytest_sessionstart(session())


def test_a_browser_test_is_skipped_naming_chromium_when_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "BROWSER_BINARIES", (tmp_path / "chromium", tmp_path / "chromedriver"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        conftest.pytest_runtest_setup(browser_item())


def test_a_missing_browser_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "BROWSER_BINARIES", (tmp_path / "chromium", tmp_path / "chromedriver"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium-driver"):
        conftest.pytest_runtest_setup(browser_item())


def test_other_tests_do_not_need_a_browser(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "BROWSER_BINARIES", (tmp_path / "chromium",))
    monkeypatch.setenv("CI", "true")
    conftest.pytest_runtest_setup(SimpleNamespace(get_closest_marker=lambda name: None))
