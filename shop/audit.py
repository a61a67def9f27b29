"""The admin's audit trail: who did what to how many people, in Django's `LogEntry` table.

An app names its audited actions once (`audit_action(key, label)`) and logs each run with
`log_admin_action(user, key, model, people=…)`: one row per run, the key and the count in
`change_message` (JSON), the ids (never names or emails) in `object_repr`. The trail's admin
(`shop.admin.AuditTrailAdmin`) lists them, filterable by user and action.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.utils.functional import Promise

AUDITED: dict[str, Promise | str] = {}  # key -> label, in the order apps named them
_MAX_IDS_SHOWN = 10


def audit_action(key: str, label: Promise | str) -> str:
    """Name an audited action (at import time); returns its key."""
    AUDITED[key] = label
    return key


def log_admin_action(user, key: str, model: type[Model], *, people: int, ids: Sequence[int] = ()) -> LogEntry:
    """Record one run of the audited action `key` by `user` on `people` people (or rows)."""
    if key not in AUDITED:
        raise ValueError(f"unknown audited action {key!r}: name it with audit_action() first")
    shown = ", ".join(str(i) for i in ids[:_MAX_IDS_SHOWN]) + (" …" if len(ids) > _MAX_IDS_SHOWN else "")
    return LogEntry.objects.create(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(model),
        object_id=None,  # Django's history page of one object would call it "No fields changed."
        object_repr=shown[:200],
        action_flag=CHANGE,
        change_message=json.dumps([{"audit": key, "people": people}]),
    )


def audit_details(entry: LogEntry) -> tuple[str, int] | None:
    """(key, people) of an audited run, None for Django's own add/change/delete entries."""
    message = entry.change_message or ""
    if not message.startswith('[{"audit"'):
        return None
    try:
        details = json.loads(message)[0]
        return str(details["audit"]), int(details["people"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def audit_filter(key: str) -> str:
    """The start of `change_message` for the runs of `key` (for a `startswith` filter)."""
    return '[{"audit": ' + json.dumps(key) + ", "
