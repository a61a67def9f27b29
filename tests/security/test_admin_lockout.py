"""Repeated failed admin logins lock the account and the address out for the cool-off (django-axes),
behind the same trusted proxies as the feeds' failure limit. The lock-out page is a short 429 in
the visitor's language; no log line names the account."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db.models import F

from tests.conftest import HTTPSClient

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
USER = "boss.person@shop.example"  # a username may be an email: it must never reach a log
PASSWORD = "the-right-password"
HERE, ELSEWHERE = "198.51.100.7", "203.0.113.50"


@pytest.fixture(autouse=True)
def staff(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins
    return get_user_model().objects.create_superuser(USER, "boss@shop.example", PASSWORD)


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


def login(username: str = USER, password: str = PASSWORD, *, address: str = HERE, **headers):
    """One login through the admin's form, from a fresh browser at `address`."""
    return HTTPSClient().post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address, headers=headers
    )


def fail(times: int, *, username: str = USER, address: str = HERE, **headers) -> None:
    for _ in range(times):
        response = login(username, "a-wrong-guess", address=address, **headers)
        assert response.status_code in (200, 429)  # the form again, or already the lock-out


def assert_locked_out(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert int(response["Retry-After"]) == 15 * 60
    text = response.content.decode()
    assert text.startswith("Too many failed logins") and "15 minutes" in text
    assert "Traceback" not in text and USER not in text


def test_the_right_password_works(limit):
    assert login().status_code == 302


def test_fewer_failures_than_the_limit_do_not_lock(limit):
    fail(limit - 1)
    assert login().status_code == 302


def test_the_limit_locks_the_account_out_even_with_the_right_password(limit):
    fail(limit)
    assert_locked_out(login())


def test_the_locked_account_is_locked_from_every_address(limit):
    fail(limit, address=HERE)
    assert_locked_out(login(address=ELSEWHERE))


def test_the_locking_address_is_locked_for_every_account(limit):
    for i in range(limit):
        fail(1, username=f"guess-{i}", address=HERE)
    assert_locked_out(login(address=HERE))
    assert login(address=ELSEWHERE).status_code == 302


def test_the_cool_off_lets_them_in_again(limit, settings):
    fail(limit)
    assert_locked_out(login())
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1))
    assert login().status_code == 302


def test_the_lock_out_page_speaks_italian(limit):
    fail(limit)
    response = login(**{"Accept-Language": "it"})
    assert response.status_code == 429
    assert (
        response.content.decode().startswith("Troppi accessi non riusciti") and "15 minuti" in response.content.decode()
    )


def test_behind_the_proxies_spoofed_addresses_share_the_clients_lock(limit, settings):
    settings.TRUST_X_FORWARDED_PROTO = True
    settings.NUM_PROXIES = 1
    for i in range(limit):
        fail(1, username=f"guess-{i}", address="10.0.0.2", **{"X-Forwarded-For": f"192.0.2.{i}, {HERE}"})
    assert_locked_out(login(address="10.0.0.2", **{"X-Forwarded-For": f"198.51.100.99, {HERE}"}))
    assert login(address="10.0.0.2", **{"X-Forwarded-For": ELSEWHERE}).status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HERE}


def test_no_log_line_names_the_account(limit, caplog):
    with caplog.at_level(logging.DEBUG):
        fail(limit + 1)
    assert caplog.records  # axes reports the failures and the lock-out
    assert all(USER not in record.getMessage() for record in caplog.records)
