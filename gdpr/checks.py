"""System checks for the GDPR settings: a setting that would widen what is shared is an Error.

With `check --deploy`, a recency window over ten years is an Error (no longer "recent" in any
sense a privacy notice could state) and one over two years, the Passweb text's example, a
Warning that names the setting.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from gdpr.policy import DATA_PURPOSES

E001 = "gdpr.E001"
E002 = "gdpr.E002"
E003 = "gdpr.E003"
W001 = "gdpr.W001"
RECENT_DAYS_LONGEST = 3650  # ten years
RECENT_DAYS_USUAL = 730  # "the last two years"


@register(Tags.security, deploy=False)
def check_data_purpose(app_configs=None, **kwargs):
    purpose = getattr(settings, "CLERK_DATA_PURPOSE", None)
    if purpose not in DATA_PURPOSES:
        return [
            Error(
                f"CLERK_DATA_PURPOSE is {purpose!r}: the feeds refuse to run with an unknown purpose.",
                hint=f"Set CLERK_DATA_PURPOSE to one of: {', '.join(DATA_PURPOSES)}.",
                id=E001,
            )
        ]
    return []


@register(Tags.security, deploy=False)
def check_recent_days(app_configs=None, **kwargs):
    days = getattr(settings, "GDPR_RECENT_DAYS", None)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        return [
            Error(
                f"GDPR_RECENT_DAYS is {days!r}: the recency window must be a whole number of days ≥ 1.",
                hint="Set GDPR_RECENT_DAYS to the retention your privacy notice states (default 730).",
                id=E002,
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_recent_days_bounded(app_configs=None, **kwargs):
    days = getattr(settings, "GDPR_RECENT_DAYS", None)
    if not isinstance(days, int) or days <= RECENT_DAYS_USUAL:
        return []  # not a number of days at all: gdpr.E002
    if days > RECENT_DAYS_LONGEST:
        return [
            Error(
                f"GDPR_RECENT_DAYS is {days}, over ten years: the window no longer limits anything to recent data.",
                hint="Set GDPR_RECENT_DAYS to the retention your privacy notice states (default 730, "
                "the last two years).",
                id=E003,
            )
        ]
    return [
        Warning(
            f"GDPR_RECENT_DAYS is {days}, more than two years: customers without consent are shared "
            "on their contract for that long.",
            hint="Check that your privacy notice states this period; the usual one is the last two years (730).",
            id=W001,
        )
    ]
