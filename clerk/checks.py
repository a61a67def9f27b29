"""System checks of clerk's settings: `CLERK_PUSH` must name a mode (clerk.E001)."""

from __future__ import annotations

from django.core.checks import Error, register

from clerk.push import DEFAULT_MODE, MODES, setting_problem

E001 = "clerk.E001"


@register(deploy=False)
def check_push_setting(app_configs=None, **kwargs):
    problem = setting_problem()
    if problem is None:
        return []
    return [
        Error(
            problem,
            hint=f"Set CLERK_PUSH to {' or '.join(MODES)}, or leave it unset ({DEFAULT_MODE}): see docs/operations.md, 'Push'.",
            id=E001,
        )
    ]
