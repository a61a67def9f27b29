"""The GDPR app's records: the consent ledger, erasures, what Clerk may hold.

* `ConsentRecord`: append-only proof of what each customer agreed to, and when (the latest
  record of a purpose decides; a withdrawal wins a tie). Only erasure may redact its evidence
  (`gdpr.ledger.redact_evidence`); on PostgreSQL a trigger refuses any other UPDATE or DELETE.
* `Erasure`: the audit trail of right-to-erasure requests carried out (no personal data).
* `ClerkHolding`: the customers and orders Clerk may hold, as 64-id blocks (`gdpr.holdings`).
* `SweepMark`: the settings the last reconciliation pass (`gdpr.sweep`) ran under, and when.
See docs/gdpr.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from clerk.models import ObjectType
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
        return _("erasure %(number)s (%(date)s)") % {
            "number": self.pk,
            "date": date_format(timezone.localtime(self.at), "SHORT_DATE_FORMAT"),
        }


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
        return _("%(name)s at %(at)s (%(purpose)s, %(days)s days)") % {
            "name": self.name,
            "at": date_format(timezone.localtime(self.swept_at), "SHORT_DATETIME_FORMAT"),
            "purpose": self.purpose,
            "days": self.recent_days,
        }


# --- what Clerk may hold -----------------------------------------------------------------------
class ClerkHolding(models.Model):
    """A block of 64 consecutive ids of customers or orders, of which Clerk may hold those whose
    bit is set: a feed handed them out, and no deletion of them has been queued since. Bit `i` of
    `bits` (two's complement) stands for id `block * 64 + i`. Written by the feeds
    (`gdpr.holdings.record_handed_out`), cleared by `clerk.outbox.queue_deletions`, through `clerk.hooks`."""

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
