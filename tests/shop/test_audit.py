"""The admin audit trail (`shop.audit`): one LogEntry per run, no personal data, bad input refused."""

from __future__ import annotations

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from shop.admin import CustomerAdminPart
from shop.audit import AUDITED, audit_details, audit_filter, log_admin_action
from shop.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user("auditor")


def test_a_run_is_one_entry_with_the_ids_and_the_count(user, monkeypatch):
    monkeypatch.setitem(AUDITED, "test_action", "a test action")
    entry = log_admin_action(user, "test_action", Customer, people=12, ids=list(range(1, 13)))
    assert audit_details(entry) == ("test_action", 12)
    assert entry.object_repr == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 …" and entry.object_id is None
    assert entry.change_message.startswith(audit_filter("test_action"))
    assert not entry.change_message.startswith(audit_filter("test"))  # a prefix of another key


def test_an_unnamed_action_is_refused(user):
    with pytest.raises(ValueError, match="unknown audited action 'nope'"):
        log_admin_action(user, "nope", Customer, people=1)
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(
    "message", ["", "[]", '[{"added": {}}]', '[{"audit": "x"}]', '[{"audit": "x", "people": "many"}]']
)
def test_entries_that_are_not_audited_runs_have_no_details(user, message):
    entry = LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Customer),
        object_repr="x",
        action_flag=ADDITION,
        change_message=message,
    )
    assert audit_details(entry) is None


def test_a_page_action_must_be_one_of_the_parts_actions():
    @django_admin.action(description="Gift")
    def gift(modeladmin, request, queryset):
        return None

    with pytest.raises(ValueError, match="page action"):
        CustomerAdminPart(page_actions=((gift, "Give a gift"),))
    assert CustomerAdminPart(actions=(gift,), page_actions=((gift, "Give a gift"),)).page_actions
