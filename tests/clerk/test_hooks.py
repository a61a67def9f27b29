"""clerk's hooks fail closed: a personal deletion is never queued, dropped or sent without them."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from clerk import hooks
from clerk.delivery import deliver_pending
from clerk.health import registered_checks
from clerk.models import ClerkDeletion, DeliveryAttempt, Reason, Status
from clerk.outbox import queue_deletions
from gdpr.holdings import forget_held
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def unhooked(monkeypatch):
    """As if no layer above had registered anything."""
    monkeypatch.setattr(hooks, "_queued", {})
    monkeypatch.setattr(hooks, "_served", {})
    monkeypatch.setattr(hooks, "_reconcile", [])


def test_gdpr_registers_its_hooks_and_its_check():
    assert hooks._queued == {"customers": forget_held, "orders": forget_held}
    assert set(hooks._served) == {"customers", "orders"}
    assert hooks.reconciliation() is not None
    assert [c.name for c in registered_checks()] == [
        "settings",
        "database",
        "cache",
        "clerk_api",
        "feeds",
        "outbox",
        "push",
        "gdpr_sweep",
        "imports",
        "rank_index",
    ]


@pytest.mark.parametrize("object_type", ["customers", "orders"])
def test_a_personal_deletion_is_not_queued_without_its_hook(unhooked, object_type):
    with pytest.raises(hooks.HookMissing), transaction.atomic():
        queue_deletions(object_type=object_type, ids=[1, 2], reason=Reason.WITHDRAWAL)

    assert not ClerkDeletion.objects.exists()


def test_a_personal_deletion_is_neither_dropped_nor_sent_without_its_hook(unhooked, fake_clerk):
    row = ClerkDeletion.objects.create(action="delete", object_type="customers", object_id=7, reason="withdrawal")

    with pytest.raises(hooks.HookMissing):
        deliver_pending()

    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 0)
    assert not DeliveryAttempt.objects.exists()
    assert fake_clerk.calls("/customers") == []


def test_catalogue_deletions_need_no_hook(unhooked, fake_clerk):
    kept = ProductFactory()
    queue_deletions(object_type="products", ids=[kept.pk, kept.pk + 1000], reason=Reason.DELETED)

    report = deliver_pending()

    assert (report.delivered, report.superseded) == (1, 1)  # the product still in the shop is kept
    assert ClerkDeletion.objects.get(object_id=kept.pk).status == Status.SUPERSEDED


def test_an_erasure_needs_no_served_hook(unhooked, fake_clerk):
    ClerkDeletion.objects.create(action="delete", object_type="customers", object_id=7, reason="erasure")

    assert deliver_pending().delivered == 1


def test_hooks_are_for_personal_types_only():
    with pytest.raises(ValueError, match="personal types"):
        hooks.serves("products", lambda **kwargs: [])


def test_the_worker_refuses_to_run_without_a_reconciliation_pass(unhooked):
    with pytest.raises(CommandError, match="no reconciliation pass"):
        call_command("clerk_sync", "--loop")
