"""The consent ledger: append-only proof of what each customer agreed to, and when.

The current state of a purpose is the customer's latest record for it (by `at`, then by id).
History is never rewritten: records are only ever added (`gdpr.ledger.record_consent`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from shop.models import Customer


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
    def update(self, **kwargs):  # noqa: D401 - the refusal is the contract
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
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

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
