"""What gdpr tells clerk (registered by GdprConfig.ready through `register()`).

on deletions queued (customers, orders)   `gdpr.holdings.forget_held`, same transaction
which ids are served                      the policy's `eligible_customers` / `_orders`
the worker's periodic pass                `gdpr.sweep.sweep`
clerk_check's `gdpr_sweep` check          `check_sweep`
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.utils import timezone

from clerk import hooks
from clerk.health import Level, Options, Result, format_age, register_check
from clerk.models import PERSONAL_TYPES
from gdpr.holdings import forget_held
from gdpr.sweep import POLICY, last_sweep, sweep, unreconciled_settings


def register() -> None:
    for object_type in PERSONAL_TYPES:
        hooks.on_deletions_queued(object_type, forget_held)
        hooks.serves(object_type, served_ids)
    hooks.reconciles_with(sweep)
    register_check("gdpr_sweep", check_sweep, order=70)


def served_ids(*, object_type: str, ids: Collection[int], now: dt.datetime) -> list[int]:
    """Those of `ids` the policy admits at `now`."""
    return list(POLICY[object_type](now=now).filter(pk__in=ids).values_list("pk", flat=True))


# --- clerk_check ---------------------------------------------------------------------------------
SWEEP_FIX = "run manage.py gdpr_sweep, or restart the clerk_sync worker"


def check_sweep(options: Options) -> Result:
    """Clerk's copy was reconciled with the policy under the running settings, and lately
    (`gdpr.sweep`): until then, what a setting took out of the feeds may still be at Clerk."""
    mark = last_sweep()
    if mark is None:
        return Result(
            "gdpr_sweep", Level.FAILURE, f"Clerk's copy was never reconciled with the GDPR policy: {SWEEP_FIX}"
        )
    changed = unreconciled_settings(mark)
    if changed:
        return Result(
            "gdpr_sweep",
            Level.FAILURE,
            f"the feeds run under settings Clerk's copy was not reconciled with: {SWEEP_FIX}",
            tuple(changed),
        )
    age = timezone.now() - mark.swept_at
    if age > dt.timedelta(hours=options.sweep_max_age_hours):
        return Result(
            "gdpr_sweep",
            Level.FAILURE,
            f"no reconciliation with the GDPR policy for {format_age(age)} "
            f"(over {options.sweep_max_age_hours} h): {SWEEP_FIX}",
        )
    return Result(
        "gdpr_sweep",
        Level.OK,
        f"Clerk's copy reconciled {format_age(age)} ago under the running settings "
        f"({mark.purpose}, {mark.recent_days} days)",
    )
