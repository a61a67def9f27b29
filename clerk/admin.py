"""The outbox in Django admin: what Clerk must still be told, and every try.

* Clerk deletions: a read-only list with filters and each row's delivery attempts; failed (or
  pending) deliveries can be retried now, with the "change Clerk deletion" permission (each
  retry is in the audit trail, `shop.audit`). The email of a forget is never shown; a settled
  row shows no next attempt.
* `ReadOnlyAdmin`: a list and detail pages to look at, nothing to add, change or delete.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clerk.delivery import MAX_REFUSALS
from clerk.models import Action, ClerkDeletion, DeliveryAttempt, Outcome, Status
from clerk.outbox import retry_now
from shop.admin import ReadOnlyMixin, compact_time, short_text
from shop.audit import audit_action, log_admin_action

RETRY = audit_action("outbox_retry", _("Clerk deletions retried"))


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A list and detail pages to look at; nothing to add, change or delete."""


def next_attempt(row: ClerkDeletion):
    """When a worker may try the row next; nothing once it is settled (delivered, failed, superseded)."""
    return compact_time(row.next_attempt_at) if row.status == Status.PENDING else "–"


# --- the outbox --------------------------------------------------------------------------------
class DeliveryAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "finished_at", "outcome", "status_code", "error", "batch"]
    readonly_fields = fields
    ordering = ["-started_at", "-id"]

    @admin.display(description=_("HTTP status"))
    def status_code(self, obj):
        if obj.http_status is not None:
            return obj.http_status
        # Only a 2xx reply with an explicit "ok" counts as delivered (`clerk.client`).
        return "2xx" if obj.outcome == Outcome.OK else "–"


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
        "what",
        "reason",
        "status_badge",
        "attempts",
        "queued",
        "next_attempt",
        "delivered",
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
        "next_attempt",
        "attempts",
        "refusal_count",
        "delivered_at",
        "last_error",
    ]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def get_queryset(self, request):
        # Pushes have their own page (`clerk.admin_push`): this one lists deletions and forgets.
        return super().get_queryset(request).exclude(action=Action.PUSH)

    def has_retry_permission(self, request):
        return request.user.has_perm("clerk.change_clerkdeletion")

    @admin.display(description=_("target"))
    def target(self, obj):
        # The email of a pending forget is never shown: it is kept only to send it to Clerk.
        if obj.object_id is not None:
            return obj.object_id
        return _("email (hidden)") if obj.email else _("email (delivered, removed)")

    @admin.display(description=_("what"))
    def what(self, obj):
        if obj.object_id is None:
            return f"{obj} – {self.target(obj)}"
        return str(obj)

    @admin.display(description=_("queued at"), ordering="created_at")
    def queued(self, obj):
        return compact_time(obj.created_at)

    @admin.display(description=_("next attempt at"), ordering="next_attempt_at")
    def next_attempt(self, obj):
        return next_attempt(obj)

    @admin.display(description=_("delivered at"), ordering="delivered_at")
    def delivered(self, obj):
        return compact_time(obj.delivered_at)

    @admin.display(description=_("refusals since last retry"))
    def refusal_count(self, obj):
        return _("%(count)s (at %(max)s refusals in a row the row fails)") % {
            "count": obj.refusals,
            "max": MAX_REFUSALS,
        }

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        colour = {Status.FAILED: "#ba2121", Status.PENDING: "#a36a00"}.get(obj.status, "#417505")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return short_text(obj.last_error, 30)

    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry(self, request, queryset):
        count = retry_now(queryset)
        log_admin_action(request.user, RETRY, ClerkDeletion, people=count)
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
