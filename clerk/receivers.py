"""What queues a push: a saved shop row (the admin, a shell) and the import's changed rows.

`connect()` (from `ClerkConfig.ready`) listens to `post_save` of the five feed models, inside
the saving transaction, and registers with `shop.change_hook` for the import's writers and its
run (`clerk.outbox.import_pushes`). Entries into the personal feeds are queued by gdpr
(`gdpr.membership`). Deletions are queued by gdpr's receivers, not here.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models.signals import post_save, pre_save

from clerk.models import ObjectType, Reason
from clerk.outbox import import_pushes, queue_pushes
from clerk.push import pushed_types
from shop.change_hook import register_change_listener
from shop.models import Category, Customer, Order, Page, Product

# The five feed models and their Clerk object types (also read by `gdpr.receivers`).
OBJECT_TYPES = {
    Product: ObjectType.PRODUCTS,
    Category: ObjectType.CATEGORIES,
    Page: ObjectType.PAGES,
    Customer: ObjectType.CUSTOMERS,
    Order: ObjectType.ORDERS,
}


def queue_saved_object(sender, instance, raw=False, **kwargs) -> None:
    if raw:  # loaddata: not a change of the shop's
        return
    ids = [instance.pk]
    if sender is Category:
        # A category's feed object lists its subcategories: a move changes both parents.
        ids += [p for p in (instance.parent_id, getattr(instance, "_clerk_parent_before", None)) if p is not None]
    queue_pushes(object_type=OBJECT_TYPES[sender], ids=ids, reason=Reason.CHANGED)


def remember_parent(sender, instance, raw=False, **kwargs) -> None:
    if not raw and instance.pk is not None and ObjectType.CATEGORIES in pushed_types():
        instance._clerk_parent_before = (
            Category.objects.filter(pk=instance.pk).values_list("parent_id", flat=True).first()
        )


def queue_imported(object_type: str, ids: Collection[int]) -> None:
    queue_pushes(object_type=object_type, ids=ids, reason=Reason.CHANGED)


def connect() -> None:
    pre_save.connect(remember_parent, sender=Category, dispatch_uid="clerk.remember_parent")
    for model in OBJECT_TYPES:
        post_save.connect(queue_saved_object, sender=model, dispatch_uid=f"clerk.queue_saved.{model.__name__}")
    register_change_listener(queue_imported, run=import_pushes)
