"""The boundary's records: the outbox of what Clerk must be told, and the log of every try.

* `ClerkDeletion`: one thing Clerk must be told: forget an object or a person, or take an
  object's current state (a push; `ClerkPush` is its admin view); `clerk.outbox` writes it,
  `clerk.delivery` sends it, `clerk.retention` prunes it.
* `DeliveryAttempt`: one try at delivering one row.
* The enums of their columns: `Action`, `ObjectType`, `Reason`, `Status`, `Outcome`;
  `PERSONAL_TYPES` are the object types that carry personal data (customers, orders).

The tables keep the names they had in `gdpr` (docs/clerk.md, "The move from gdpr").
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


# --- the outbox --------------------------------------------------------------------------------
class Action(models.TextChoices):
    DELETE = "delete", _("delete object")
    FORGET = "forget", _("forget person")
    PUSH = "push", _("push object")


# The actions on one object: at most one of them is pending per object (the latest intent).
OBJECT_ACTIONS = (Action.DELETE, Action.PUSH)


class ObjectType(models.TextChoices):
    PRODUCTS = "products", _("product")
    CATEGORIES = "categories", _("category")
    CUSTOMERS = "customers", _("customer")
    ORDERS = "orders", _("order")
    PAGES = "pages", _("page")


PERSONAL_TYPES = (ObjectType.CUSTOMERS, ObjectType.ORDERS)


class Reason(models.TextChoices):
    WITHDRAWAL = "withdrawal", _("consent withdrawn")
    ERASURE = "erasure", _("right to erasure")
    AGED_OUT = "aged_out", _("data older than the window")
    DELETED = "deleted", _("deleted in the shop")
    LEFT_FEED = "left_feed", _("no longer eligible")
    CHANGED = "changed", _("changed in the shop")
    ENTERED = "entered", _("entered the feeds")


class Status(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    SUPERSEDED = "superseded", _("superseded (back in the feed)")
    FAILED = "failed", _("failed (refused by Clerk)")


class ClerkDeletion(models.Model):
    """One thing Clerk must forget: an object (`delete`) or a person (`forget`).

    Written in the same transaction as the change that makes it necessary, delivered by
    `manage.py clerk_sync`. A row is `delivered` only after Clerk answered "ok"; until then it is
    `pending` and `next_attempt_at` says when a worker may (re)try it (it doubles as the lease of
    a worker that claimed it). The email of a `forget` is kept only until delivery.
    """

    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=16, choices=ObjectType.choices, blank=True)
    object_id = models.BigIntegerField(
        _("object id"), null=True, blank=True, help_text=_("For a forget: the customer id, if any.")
    )
    email = models.EmailField(_("email to forget"), max_length=254, blank=True, help_text=_("Blanked once delivered."))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    refusals = models.PositiveIntegerField(
        _("refusals since last retry"),
        default=0,
        help_text=_("Clerk's refusals of this row in a row; at the limit the row fails."),
    )
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    version = models.PositiveIntegerField(
        _("version"), default=0, help_text=_("Moves with every intent coalesced into this row.")
    )

    class Meta:
        db_table = "gdpr_clerkdeletion"
        verbose_name = _("Clerk deletion")
        verbose_name_plural = _("Clerk deletions (outbox)")
        ordering = ["-id"]
        indexes = [
            # The worker's claim: due pending rows, oldest first.
            models.Index(fields=["status", "next_attempt_at", "id"], name="outbox_due"),
            models.Index(fields=["object_type", "object_id"], name="outbox_object"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(action__in=["delete", "push"], object_id__isnull=False) & ~models.Q(object_type="")
                    | models.Q(action="forget", object_type="")
                ),
                name="outbox_action_shape_v2",
            ),
            # Coalescing (`clerk.outbox`): one pending intent per object, the latest.
            models.UniqueConstraint(
                fields=["object_type", "object_id"],
                condition=models.Q(status="pending", action__in=["delete", "push"]),
                name="outbox_one_pending_intent",
            ),
        ]

    def __str__(self) -> str:
        if self.action == Action.FORGET:
            if self.object_id is None:
                return str(_("forget a person by email"))
            return _("forget customer %(id)s") % {"id": self.object_id}
        if self.action == Action.PUSH:
            return _("push %(type)s %(id)s") % {"type": self.get_object_type_display(), "id": self.object_id}
        return _("delete %(type)s %(id)s") % {"type": self.get_object_type_display(), "id": self.object_id}


class ClerkPush(ClerkDeletion):
    """The outbox's push rows, for their own page in the admin (`clerk.admin_push`)."""

    class Meta:
        proxy = True
        verbose_name = _("Clerk push")
        verbose_name_plural = _("Clerk pushes (outbox)")


class Outcome(models.TextChoices):
    IN_FLIGHT = "in_flight", _("sent, no acknowledgement recorded")
    OK = "ok", _("ok")
    UNREACHABLE = "unreachable", _("Clerk unreachable (will retry)")
    REFUSED = "refused", _("refused by Clerk")
    SUPERSEDED = "superseded", _("not sent: back in the feed")


class DeliveryAttempt(models.Model):
    """One try at delivering one outbox row (rows sent in one call share `batch`)."""

    deletion = models.ForeignKey(
        ClerkDeletion, verbose_name=_("deletion"), on_delete=models.CASCADE, related_name="deliveries"
    )
    batch = models.UUIDField(_("batch"), db_index=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        db_table = "gdpr_deliveryattempt"
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return _("attempt %(number)s: %(outcome)s") % {"number": self.pk, "outcome": self.get_outcome_display()}
