"""The GDPR app's records: the consent ledger, the Clerk deletion outbox, erasures.

* `ConsentRecord`: append-only proof of what each customer agreed to, and when. The current
  state of a purpose is the customer's latest record for it: by `at`; on a tie in `at` a
  withdrawal wins (fail closed), then the later record (by id). History is never rewritten:
  records are only ever added (`gdpr.ledger.record_consent`). The one exception is erasure,
  which replaces the evidence text by a neutral marker (`gdpr.ledger.redact_evidence`) so the
  proof survives without identifying the person; on PostgreSQL a trigger refuses every other
  UPDATE and every DELETE, even from raw SQL.
* `ClerkDeletion` and `DeliveryAttempt`: the durable outbox of deletions that must reach Clerk
  (written in the same transaction as the change that causes them) and the log of every try.
* `Erasure`: the audit trail of right-to-erasure requests carried out (no personal data).
* `ClerkHolding`: the customers and orders Clerk may hold (handed out by a feed, no deletion
  queued since); `gdpr.holdings` is its one home.
* `SweepMark`: the settings the last reconciliation pass (`gdpr.sweep`) ran under, and when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shop.models import Customer

# What erasure leaves in place of evidence text that might quote personal data. The PostgreSQL
# trigger (migration 0003) accepts exactly this text: changing it needs a new migration.
REDACTED_EVIDENCE = "[redacted: right to erasure]"


class Purpose(models.TextChoices):
    THIRD_PARTY_SHARING = "third_party_sharing", _("sharing with Clerk (third party)")
    MARKETING = "marketing", _("marketing")


class Source(models.TextChoices):
    CHECKOUT = "checkout", _("checkout")
    ACCOUNT = "account", _("account")
    ADMIN = "admin", _("admin")
    IMPORT = "import", _("import")


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a ledger record."""


class ConsentRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):  # the refusal is the contract
        raise AppendOnlyError("Consent records are append-only: add a new record instead.")

    def delete(self):
        raise AppendOnlyError("Consent records are append-only and cannot be deleted.")

    update.queryset_only = True
    delete.queryset_only = True


class ConsentRecord(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="consents"
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    granted = models.BooleanField(_("granted"), help_text=_("Off: withdrawn (an objection)."))
    at = models.DateTimeField(_("when"), help_text=_("When the customer gave or withdrew it."))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    evidence = models.TextField(
        _("evidence"), blank=True, help_text=_("How it was collected: form, wording, reference.")
    )
    # PROTECT: who recorded a consent is part of the proof; deactivate staff users instead.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    redacted_at = models.DateTimeField(
        _("evidence redacted at"),
        null=True,
        blank=True,
        help_text=_("Set by erasure: the evidence text was replaced by a neutral marker."),
    )

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["customer_id", "purpose", "at", "id"]
        indexes = [
            # "Latest record per purpose" is a seek on this index.
            models.Index(fields=["customer", "purpose", "at", "id"], name="consent_latest"),
        ]

    def __str__(self) -> str:
        state = _("granted") if self.granted else _("withdrawn")
        return f"{self.get_purpose_display()}: {state} ({self.at:%Y-%m-%d})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Consent records are append-only: add a new record instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Consent records are append-only and cannot be deleted.")


# --- the outbox --------------------------------------------------------------------------------
class Action(models.TextChoices):
    DELETE = "delete", _("delete object")
    FORGET = "forget", _("forget person")


class ObjectType(models.TextChoices):
    PRODUCTS = "products", _("product")
    CATEGORIES = "categories", _("category")
    CUSTOMERS = "customers", _("customer")
    ORDERS = "orders", _("order")
    PAGES = "pages", _("page")


class Reason(models.TextChoices):
    WITHDRAWAL = "withdrawal", _("consent withdrawn")
    ERASURE = "erasure", _("right to erasure")
    AGED_OUT = "aged_out", _("data older than the window")
    DELETED = "deleted", _("deleted in the shop")
    LEFT_FEED = "left_feed", _("no longer eligible")


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
        _("refusals since last retry"), default=0, help_text=_("Capped: then the row fails.")
    )
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
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
                    models.Q(action="delete", object_id__isnull=False) & ~models.Q(object_type="")
                    | models.Q(action="forget", object_type="")
                ),
                name="outbox_action_shape",
            )
        ]

    def __str__(self) -> str:
        if self.action == Action.FORGET:
            who = f"customer {self.object_id}" if self.object_id is not None else "email"
            return f"forget {who}"
        return f"delete {self.object_type} {self.object_id}"


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
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at", "-id"]


# --- erasure and the sweep ---------------------------------------------------------------------
class Erasure(models.Model):
    """Audit trail of one right-to-erasure request carried out. Holds no personal data."""

    at = models.DateTimeField(_("erased at"), default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("carried out by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reference = models.CharField(
        _("reference"),
        max_length=200,
        blank=True,
        help_text=_("Ticket or request number. Never the person's name or email."),
    )
    customer_ids = models.JSONField(_("customer ids"), default=list)
    orders_erased = models.PositiveIntegerField(_("orders anonymised"), default=0)
    records_redacted = models.PositiveIntegerField(_("consent records redacted"), default=0)
    deletions_queued = models.PositiveIntegerField(_("Clerk deletions queued"), default=0)

    class Meta:
        verbose_name = _("erasure")
        verbose_name_plural = _("erasures")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} ({self.at:%Y-%m-%d})"


class SweepMark(models.Model):
    """The settings the reconciliation pass last ran under, and when (one row per pass name)."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    swept_at = models.DateTimeField(_("swept at"))
    purpose = models.CharField(_("data purpose"), max_length=16)
    recent_days = models.PositiveIntegerField(_("recent days"))

    class Meta:
        verbose_name = _("sweep mark")
        verbose_name_plural = _("sweep marks")

    def __str__(self) -> str:
        return f"{self.name} at {self.swept_at:%Y-%m-%d %H:%M} ({self.purpose}, {self.recent_days} days)"


# --- what Clerk may hold -----------------------------------------------------------------------
class ClerkHolding(models.Model):
    """A block of 64 consecutive ids of customers or orders, of which Clerk may hold those whose
    bit is set: a feed handed them out, and no deletion of them has been queued since. Bit `i` of
    `bits` (two's complement) stands for id `block * 64 + i`. Written by the feeds
    (`gdpr.holdings.record_handed_out`), cleared by `gdpr.outbox.queue_deletions`."""

    object_type = models.CharField(_("object type"), max_length=16, choices=ObjectType.choices)
    block = models.BigIntegerField(_("block of 64 ids"))
    bits = models.BigIntegerField(_("ids held in the block"))
    since = models.DateTimeField(_("first handed out"))

    class Meta:
        verbose_name = _("Clerk holding")
        verbose_name_plural = _("Clerk holdings")
        constraints = [
            models.UniqueConstraint(fields=["object_type", "block"], name="holding_block"),
            models.CheckConstraint(
                condition=models.Q(object_type__in=["customers", "orders"]), name="holding_block_personal_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.block * 64}–{self.block * 64 + 63}"
