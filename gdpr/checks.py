"""System checks for the GDPR settings: a setting that would widen what is shared is an Error."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from gdpr.policy import DATA_PURPOSES

E001 = "gdpr.E001"
E002 = "gdpr.E002"


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
