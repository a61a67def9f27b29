"""The GDPR settings checks: a purpose or window that could widen sharing is an Error."""

from __future__ import annotations

import pytest

from gdpr.checks import check_data_purpose, check_recent_days


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
