"""Deleting a shop object queues its deletion at Clerk, in the deleting transaction.

A `post_delete` receiver runs inside the transaction Django's deletion collector opens, so the
delete and its outbox row commit or roll back together, and it also fires for queryset
`.delete()` and cascades (the collector sends the signal per object once a receiver exists).
Raw SQL deletes and `TRUNCATE` bypass it: the shop's own code never uses them. This is the one
place the GDPR app uses signals; withdrawal and erasure queue their deletions in their services.
"""

from __future__ import annotations

from django.db.models.signals import post_delete

from clerk.models import Reason
from clerk.outbox import queue_deletions
from clerk.receivers import OBJECT_TYPES  # the feed models and their Clerk types: one map


def queue_deleted_object(sender, instance, **kwargs) -> None:
    queue_deletions(object_type=OBJECT_TYPES[sender], ids=[instance.pk], reason=Reason.DELETED)


def connect() -> None:
    for model in OBJECT_TYPES:
        post_delete.connect(queue_deleted_object, sender=model, dispatch_uid=f"gdpr.queue_deleted.{model.__name__}")
