"""The outbox in Django admin: what Clerk must still be told, and every try.

* Clerk deletions: a read-only list with filters and each row's delivery attempts; failed (or
  pending) deliveries can be retried now, with the "change Clerk deletion" permission. The
  email of a forget is never shown.
* `ReadOnlyAdmin`: a list and detail pages to look at, nothing to add, change or delete.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clerk.models import ClerkDeletion, DeliveryAttempt, Status
from clerk.outbox import retry_now
from shop.admin import ReadOnlyMixin


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A list and detail pages to look at; nothing to add, change or delete."""


# --- the outbox --------------------------------------------------------------------------------
class DeliveryAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "finished_at", "outcome", "http_status", "error", "batch"]
    readonly_fields = fields
    ordering = ["-started_at", "-id"]


class HasErrorFilter(admin.SimpleListFilter):
    title = _("errors")
    parameter_name = "errors"

    def lookups(self, request, model_admin):
        return [("yes", _("had errors")), ("no", _("no errors"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(last_error="")
        if self.value() == "no":
            return queryset.filter(last_error="")
        return queryset


@admin.register(ClerkDeletion)
class ClerkDeletionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "action",
        "object_type",
        "target",
        "reason",
        "status_badge",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    ]
    list_filter = ["status", HasErrorFilter, "action", "object_type", "reason", "created_at"]
    search_fields = ["=object_id"]
    fields = [
        "action",
        "object_type",
        "target",
        "reason",
        "status",
        "created_at",
        "next_attempt_at",
        "attempts",
        "refusals",
        "delivered_at",
        "last_error",
    ]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def has_retry_permission(self, request):
        return request.user.has_perm("clerk.change_clerkdeletion")

    @admin.display(description=_("target"))
    def target(self, obj):
        # The email of a pending forget is never shown: it is kept only to send it to Clerk.
        if obj.object_id is not None:
            return obj.object_id
        return _("email (hidden)") if obj.email else _("email (delivered, removed)")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        colour = {Status.FAILED: "#ba2121", Status.PENDING: "#a36a00"}.get(obj.status, "#417505")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return Truncator(obj.last_error).chars(80)

    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry(self, request, queryset):
        count = retry_now(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d deletion will be retried by the next clerk_sync run.",
                "%(count)d deletions will be retried by the next clerk_sync run.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
