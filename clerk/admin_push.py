"""The outbox's pushes in the admin: per object type, how many are pending, delivered and
failed (with Clerk's reason on each failed row), above a read-only list of the push rows.

Registered from `ClerkConfig.ready`; failed pushes are retried by a new change of the object.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Min, Q
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from clerk.admin import ReadOnlyAdmin
from clerk.models import Action, ClerkPush, ObjectType, Status
from clerk.push import setting_problem


def push_summary() -> list[dict]:
    """One row per object type: pending, delivered and failed pushes, and the oldest pending."""
    counts = {
        row["object_type"]: row
        for row in ClerkPush.objects.filter(action=Action.PUSH)
        .values("object_type")
        .annotate(
            pending=Count("id", filter=Q(status=Status.PENDING)),
            delivered=Count("id", filter=Q(status=Status.DELIVERED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            oldest=Min("created_at", filter=Q(status=Status.PENDING)),
        )
        .order_by()
    }
    empty = {"pending": 0, "delivered": 0, "failed": 0, "oldest": None}
    return [
        {"type": value, "label": label, **{k: counts.get(value, empty)[k] for k in empty}}
        for value, label in ObjectType.choices
    ]


@admin.register(ClerkPush)
class ClerkPushAdmin(ReadOnlyAdmin):
    change_list_template = "admin/clerk/push_change_list.html"
    list_display = [
        "id",
        "object_type",
        "object_id",
        "reason",
        "status",
        "attempts",
        "created_at",
        "delivered_at",
        "error",
    ]
    list_filter = ["status", "object_type", "reason", "created_at"]
    search_fields = ["=object_id"]
    fields = [
        "object_type",
        "object_id",
        "reason",
        "status",
        "version",
        "created_at",
        "next_attempt_at",
        "attempts",
        "delivered_at",
        "last_error",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(action=Action.PUSH)

    @admin.display(description=_("Clerk's reason"))
    def error(self, obj):
        return Truncator(obj.last_error).chars(80)

    def changelist_view(self, request, extra_context=None):
        problem = setting_problem()
        extra = {
            "push_summary": push_summary(),
            "push_mode": problem or settings.CLERK_PUSH,
        }
        return super().changelist_view(request, extra_context={**(extra_context or {}), **extra})
