"""Which changes are pushed to Clerk: the one home of the `CLERK_PUSH` setting.

    push_mode() -> "off" | "catalogue" | "all"     the setting, or ImproperlyConfigured
    pushed_types() -> frozenset of object types     what may be queued and sent now
    setting_problem() -> str | None                  the clear error of a bad value (clerk.E001)

`catalogue` (the default) pushes products, categories and pages; `all` adds customers and
orders, which are still sent only while the GDPR policy admits them (decided at delivery).
Read at queueing and again at delivery: turning push off stops what is queued. docs/clerk.md.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from clerk.models import PERSONAL_TYPES, ObjectType

CATALOGUE_TYPES = frozenset({ObjectType.PRODUCTS, ObjectType.CATEGORIES, ObjectType.PAGES})
MODES = {
    "off": frozenset(),
    "catalogue": CATALOGUE_TYPES,
    "all": CATALOGUE_TYPES | frozenset(PERSONAL_TYPES),
}
DEFAULT_MODE = "catalogue"


def setting_problem() -> str | None:
    value = getattr(settings, "CLERK_PUSH", DEFAULT_MODE)
    if value in MODES:
        return None
    return f"CLERK_PUSH is {value!r}; it must be one of: {', '.join(MODES)} (default {DEFAULT_MODE})."


def push_mode() -> str:
    problem = setting_problem()
    if problem is not None:
        raise ImproperlyConfigured(problem)
    return getattr(settings, "CLERK_PUSH", DEFAULT_MODE)


def pushed_types() -> frozenset[str]:
    return MODES[push_mode()]
