"""Consent management in Django admin, for shop admins who are not developers.

* `CONSENT_PART`, added to the shop's customer admin in `GdprConfig.ready`: consent states, "in
  Clerk feed" and why, filters, the ledger history; actions grant, withdraw, export CSV, erase.
* Consent records: read-only list, export. Nobody may change or delete a record here.
* Erasures: a read-only list with filters. (The outbox's admin is `clerk.admin`.)

Permissions: recording consent needs "add consent record", erasing needs "add erasure".
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clerk.admin import ReadOnlyAdmin
from gdpr.erasure import NothingToErase, erase_person
from gdpr.export import consent_rows, csv_lines
from gdpr.ledger import ConsentChange, record_consents
from gdpr.models import ConsentRecord, Erasure, Purpose, Source
from gdpr.policy import reason_label, with_consent_state, with_eligibility
from shop.admin import CustomerAdminPart, ReadOnlyMixin
from shop.models import Customer

CONSENT_STATES = {True: _("granted"), False: _("withdrawn"), None: _("no record")}


# --- list filters ------------------------------------------------------------------------------
class _ConsentStateFilter(admin.SimpleListFilter):
    annotation: str

    def lookups(self, request, model_admin):
        return [("granted", _("granted")), ("withdrawn", _("withdrawn")), ("none", _("no record"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "granted":
            return queryset.filter(**{self.annotation: True})
        if value == "withdrawn":
            return queryset.filter(**{self.annotation: False})
        if value == "none":
            return queryset.filter(**{f"{self.annotation}__isnull": True})
        return queryset


class SharingConsentFilter(_ConsentStateFilter):
    title = _("sharing consent")
    parameter_name = "sharing"
    annotation = "sharing_consent"


class MarketingConsentFilter(_ConsentStateFilter):
    title = _("marketing consent")
    parameter_name = "marketing"
    annotation = "marketing_consent"


class _YesNoFilter(admin.SimpleListFilter):
    annotation: str

    def lookups(self, request, model_admin):
        return [("yes", _("yes")), ("no", _("no"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(**{self.annotation: self.value() == "yes"})
        return queryset


class InFeedFilter(_YesNoFilter):
    title = _("in Clerk feed")
    parameter_name = "in_feed"
    annotation = "in_feed"


class RecentFilter(_YesNoFilter):
    title = _("recent data (registered or ordered within the window)")
    parameter_name = "recent"
    annotation = "is_recent"


class ErasedFilter(admin.SimpleListFilter):
    title = _("erased")
    parameter_name = "erased"

    def lookups(self, request, model_admin):
        return [("yes", _("yes")), ("no", _("no"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(erased_at__isnull=self.value() == "no")
        return queryset


# --- forms for the actions ---------------------------------------------------------------------
class ConsentChangeForm(forms.Form):
    purpose = forms.ChoiceField(label=_("purpose"), choices=Purpose.choices)
    at = forms.SplitDateTimeField(
        label=_("when the customer gave or withdrew it"),
        widget=widgets.AdminSplitDateTime,
        initial=timezone.now,
    )
    source = forms.ChoiceField(
        label=_("source"),
        choices=[(s.value, s.label) for s in (Source.ADMIN, Source.ACCOUNT, Source.CHECKOUT)],
        initial=Source.ADMIN,
    )
    evidence = forms.CharField(
        label=_("evidence"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("How we know: the customer's request, the form and its wording, a reference."),
        error_messages={"required": _("Evidence is required.")},
    )


class ErasureForm(forms.Form):
    reference = forms.CharField(
        label=_("reference"),
        required=False,
        max_length=200,
        help_text=_("Ticket or request number. Never the person's name or email."),
    )


def _action_page(modeladmin, request, queryset, *, template, title, form, action, extra=None):
    """An intermediate page that posts back to the change list with the same selection."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "queryset": queryset[:50],
        "count": queryset.count(),
        "form": form,
        "media": modeladmin.media + form.media,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        **(extra or {}),
    }
    return TemplateResponse(request, template, context)


# --- consent records inline --------------------------------------------------------------------
class ConsentRecordInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]
    fields = ["purpose", "granted", "at", "source", "evidence", "recorded_by", "recorded_at", "redacted_at"]
    readonly_fields = fields
    verbose_name_plural = _("consent history (ledger)")


# --- the consent part of the shop's customer admin ----------------------------------------------
@admin.display(description=_("sharing with Clerk"), ordering="sharing_consent")
def sharing_state(obj):
    return CONSENT_STATES[obj.sharing_consent]


@admin.display(description=_("marketing"), ordering="marketing_consent")
def marketing_state(obj):
    return CONSENT_STATES[obj.marketing_consent]


@admin.display(description=_("in Clerk feed"), boolean=True, ordering="in_feed")
def in_clerk_feed(obj):
    return bool(obj.in_feed)


@admin.display(description=_("why"), ordering="eligibility_code")
def eligibility(obj):
    return reason_label(obj.eligibility_code)


@admin.action(description=_("Record a consent grant (with evidence)"), permissions=["record_consent"])
def record_grant(modeladmin, request, queryset):
    return _record(modeladmin, request, queryset, granted=True)


@admin.action(description=_("Record a consent withdrawal (with evidence)"), permissions=["record_consent"])
def record_withdrawal(modeladmin, request, queryset):
    return _record(modeladmin, request, queryset, granted=False)


def _record(modeladmin, request, queryset, *, granted: bool):
    action = "record_grant" if granted else "record_withdrawal"
    live = queryset.filter(erased_at__isnull=True)
    skipped = queryset.count() - live.count()
    if "apply" in request.POST:
        form = ConsentChangeForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            changes = [
                ConsentChange(pk, data["purpose"], granted, data["at"], data["source"], data["evidence"])
                for pk in live.order_by("pk").values_list("pk", flat=True)
            ]
            try:
                record_consents(changes, recorded_by=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                message = (
                    ngettext(
                        "Recorded a grant for %(count)d customer.",
                        "Recorded a grant for %(count)d customers.",
                        len(changes),
                    )
                    if granted
                    else ngettext(
                        "Recorded a withdrawal for %(count)d customer.",
                        "Recorded a withdrawal for %(count)d customers.",
                        len(changes),
                    )
                )
                modeladmin.message_user(request, message % {"count": len(changes)}, messages.SUCCESS)
                outranked = _outranked(changes, purpose=data["purpose"], granted=granted)
                if outranked:
                    modeladmin.message_user(request, _outranked_message(outranked), messages.WARNING)
                if skipped:
                    modeladmin.message_user(request, _skipped_message(skipped), messages.WARNING)
                return None
    else:
        form = ConsentChangeForm()
    title = _("Record a consent grant") if granted else _("Record a consent withdrawal")
    return _action_page(
        modeladmin,
        request,
        live,
        template="admin/gdpr/consent_change.html",
        title=title,
        form=form,
        action=action,
        extra={"granted": granted, "skipped": skipped},
    )


@admin.action(description=_("Export consent evidence (CSV)"), permissions=["export_consent"])
def export_consent_csv(modeladmin, request, queryset):
    records = ConsentRecord.objects.filter(customer__in=queryset.values("pk"))
    return _csv_response(records)


@admin.action(description=_("Erase the selected people (right to erasure)"), permissions=["erase"])
def erase_selected(modeladmin, request, queryset):
    targets = queryset.filter(erased_at__isnull=True)
    if "confirm" in request.POST:
        form = ErasureForm(request.POST)
        if form.is_valid():
            erased = 0
            for pk in targets.order_by("pk").values_list("pk", flat=True):
                try:
                    erase_person(customer_id=pk, requested_by=request.user, reference=form.cleaned_data["reference"])
                except NothingToErase:
                    continue
                erased += 1
            modeladmin.message_user(
                request,
                ngettext(
                    "Erased %(count)d person; their deletion at Clerk is queued.",
                    "Erased %(count)d people; their deletion at Clerk is queued.",
                    erased,
                )
                % {"count": erased},
                messages.SUCCESS,
            )
            return None
    else:
        form = ErasureForm()
    return _action_page(
        modeladmin,
        request,
        targets,
        template="admin/gdpr/erase_confirmation.html",
        title=_("Erase people (right to erasure)"),
        form=form,
        action="erase_selected",
    )


CONSENT_PART = CustomerAdminPart(
    columns=(sharing_state, marketing_state, in_clerk_feed, eligibility),
    list_filter=(InFeedFilter, SharingConsentFilter, MarketingConsentFilter, RecentFilter, ErasedFilter),
    feed_fields=(sharing_state, marketing_state, in_clerk_feed, eligibility),
    inlines=(ConsentRecordInline,),
    actions=(record_grant, record_withdrawal, export_consent_csv, erase_selected),
    permissions={
        "record_consent": "gdpr.add_consentrecord",
        "export_consent": "gdpr.view_consentrecord",
        "erase": "gdpr.add_erasure",
    },
    queryset=with_eligibility,
)


def _outranked(changes, *, purpose: str, granted: bool) -> int:
    """How many of the customers still hold the opposite state: a later record outranks ours."""
    state = "sharing_consent" if purpose == Purpose.THIRD_PARTY_SHARING else "marketing_consent"
    ids = [c.customer_id for c in changes]
    return with_consent_state(Customer.objects.filter(pk__in=ids)).exclude(**{state: granted}).count()


def _outranked_message(count: int) -> str:
    return ngettext(
        "For %(count)d customer a later record still decides the state: the record was added to "
        "the history but changes nothing now.",
        "For %(count)d customers a later record still decides the state: the record was added to "
        "the history but changes nothing now.",
        count,
    ) % {"count": count}


def _skipped_message(count: int) -> str:
    return ngettext("%(count)d erased customer was skipped.", "%(count)d erased customers were skipped.", count) % {
        "count": count
    }


def _csv_response(records) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(csv_lines(consent_rows(records)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-evidence-{stamp}.csv"'
    return response


# --- consent records ---------------------------------------------------------------------------
@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "purpose",
        "granted",
        "at",
        "source",
        "short_evidence",
        "recorded_by",
        "recorded_at",
    ]
    list_filter = ["purpose", "granted", "source", "at", ("redacted_at", admin.EmptyFieldListFilter)]
    search_fields = ["customer__email", "customer__name", "=customer__id"]
    list_select_related = ["customer", "recorded_by"]
    date_hierarchy = "at"
    actions = ["export_csv"]

    @admin.display(description=_("evidence"))
    def short_evidence(self, obj):
        return Truncator(obj.evidence).chars(60)

    @admin.action(description=_("Export consent evidence (CSV)"), permissions=["view"])
    def export_csv(self, request, queryset):
        return _csv_response(queryset)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "at",
        "requested_by",
        "reference",
        "customer_ids",
        "orders_erased",
        "records_redacted",
        "deletions_queued",
    ]
    list_filter = ["at"]
    search_fields = ["reference"]
