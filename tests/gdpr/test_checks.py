"""The GDPR settings checks: a purpose or window that could widen sharing is an Error."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks

from gdpr.checks import check_data_purpose, check_recent_days, check_recent_days_bounded


def test_known_purposes_pass(settings):
    for purpose in ("personalisation", "marketing"):
        settings.CLERK_DATA_PURPOSE = purpose
        assert check_data_purpose() == []


def test_unknown_purpose_is_an_error(settings):
    settings.CLERK_DATA_PURPOSE = "personalization"  # US spelling: not ours
    [error] = check_data_purpose()
    assert error.id == "gdpr.E001" and error.is_serious()


@pytest.mark.parametrize("days", [0, -5, "730", None])
def test_recent_days_must_be_a_positive_integer(settings, days):
    settings.GDPR_RECENT_DAYS = days
    [error] = check_recent_days()
    assert error.id == "gdpr.E002"


def test_default_window_passes(settings):
    settings.GDPR_RECENT_DAYS = 730
    assert check_recent_days() == []


@pytest.mark.parametrize("days", [1, 365, 730])
def test_up_to_two_years_is_quiet_at_deploy(settings, days):
    settings.GDPR_RECENT_DAYS = days
    assert check_recent_days_bounded() == []


@pytest.mark.parametrize("days", [731, 1095, 3650])
def test_more_than_two_years_warns_naming_the_setting(settings, days):
    settings.GDPR_RECENT_DAYS = days
    [warning] = check_recent_days_bounded()
    assert warning.id == "gdpr.W001" and not warning.is_serious()
    assert "GDPR_RECENT_DAYS" in warning.msg and "730" in warning.hint


@pytest.mark.parametrize("days", [3651, 36500, 999_999_999, 10**12])
def test_more_than_ten_years_is_an_error(settings, days):
    settings.GDPR_RECENT_DAYS = days
    [error] = check_recent_days_bounded()
    assert error.id == "gdpr.E003" and error.is_serious()
    assert "GDPR_RECENT_DAYS" in error.msg


def test_the_bounds_are_deploy_checks(settings):
    settings.GDPR_RECENT_DAYS = 5000
    assert "gdpr.E003" not in [m.id for m in django_checks.run_checks()]
    assert "gdpr.E003" in [m.id for m in django_checks.run_checks(include_deployment_checks=True)]
