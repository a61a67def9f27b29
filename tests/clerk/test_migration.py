"""A database made before the outbox moved to clerk keeps its rows, permissions included."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from clerk.models import ClerkDeletion, DeliveryAttempt

# The last gdpr migration before the move: where every database made before it stands.
BEFORE_MOVE = ("gdpr", "0004_clerk_holdings")
MOVED = ("clerkdeletion", "deliveryattempt")


def before_move_targets(executor: MigrationExecutor) -> list[tuple[str, str | None]]:
    """Every app at its leaf, except gdpr just before the move and clerk not there at all."""
    leaves = [leaf for leaf in executor.loader.graph.leaf_nodes() if leaf[0] not in ("gdpr", "clerk")]
    return [*leaves, BEFORE_MOVE, ("clerk", None)]


@pytest.fixture
def before_move(transactional_db):
    """The database migrated back to the state before the move; forward again afterwards."""
    executor = MigrationExecutor(connection)
    targets = before_move_targets(executor)
    executor.migrate(targets)
    yield executor.loader.project_state([node for node in targets if node[1] is not None]).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_forward() -> None:
    executor = MigrationExecutor(connection)  # a fresh loader: it reads what is applied now
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_outbox_rows_and_attempts_written_before_the_move_are_read_by_clerk(before_move):
    OldDeletion = before_move.get_model("gdpr", "ClerkDeletion")
    OldAttempt = before_move.get_model("gdpr", "DeliveryAttempt")
    now = timezone.now().replace(microsecond=0)
    delete = OldDeletion.objects.create(
        action="delete", object_type="customers", object_id=42, reason="withdrawal", created_at=now
    )
    forget = OldDeletion.objects.create(
        action="forget", object_type="", email="gone@example.com", reason="erasure", status="failed", attempts=5
    )
    batch = uuid.uuid4()
    OldAttempt.objects.create(
        deletion=delete, batch=batch, started_at=now, finished_at=now + dt.timedelta(seconds=1), outcome="ok"
    )
    OldAttempt.objects.create(deletion=forget, batch=batch, started_at=now, outcome="refused", http_status=400)

    migrate_forward()

    moved = ClerkDeletion.objects.get(pk=delete.pk)
    assert (moved.action, moved.object_type, moved.object_id, moved.reason, moved.status, moved.created_at) == (
        "delete",
        "customers",
        42,
        "withdrawal",
        "pending",
        now,
    )
    assert ClerkDeletion.objects.filter(pk=forget.pk, email="gone@example.com", status="failed", attempts=5).exists()
    assert list(moved.deliveries.values_list("outcome", "batch")) == [("ok", batch)]
    assert DeliveryAttempt.objects.get(deletion_id=forget.pk).http_status == 400
    # New rows follow the old ones in the same tables (the key sequence came along).
    assert ClerkDeletion.objects.create(action="forget", email="x@example.com", reason="erasure").pk > forget.pk


def test_content_types_and_granted_permissions_follow_the_models(before_move, django_user_model):
    # A database made before the move knows the models as gdpr's, with their permissions.
    ContentType.objects.filter(model__in=MOVED).delete()
    ids = {model: ContentType.objects.create(app_label="gdpr", model=model).pk for model in MOVED}
    ContentType.objects.clear_cache()
    retry = Permission.objects.create(
        content_type_id=ids["clerkdeletion"], codename="change_clerkdeletion", name="Can change Clerk deletion"
    )
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.user_permissions.add(retry)

    migrate_forward()
    ContentType.objects.clear_cache()

    assert dict(ContentType.objects.filter(app_label="clerk", model__in=MOVED).values_list("model", "pk")) == ids
    assert not ContentType.objects.filter(app_label="gdpr", model__in=MOVED).exists()
    assert django_user_model.objects.get(pk=user.pk).has_perm("clerk.change_clerkdeletion")
