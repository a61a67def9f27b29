"""Consent management in Django admin, for shop admins who are not developers.

* `CONSENT_PART`, added to the shop's customer admin in `GdprConfig.ready`: consent states, "in
  Clerk feed" and why (the legal ground), filters, the ledger history, the person's outbox rows;
  actions grant, withdraw, export CSV, erase (each also a button on the customer's page).
* Consent records: read-only list, export. Nobody may change or delete a record here.
* Erasures: a read-only list with filters. (The outbox's admin is `clerk.admin`.)

Permissions: recording consent needs "add consent record", erasing needs "add erasure".
Every action run is logged in the audit trail (`shop.audit`).
"""

from __future__ import annotations

import itertools

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clerk.admin import ReadOnlyAdmin
from clerk.models import ClerkDeletion, ObjectType
from clerk.models import Reason as OutboxReason
from gdpr.erasure import NothingToErase, erase_person
from gdpr.export import consent_rows, csv_lines
from gdpr.holdings import is_held
from gdpr.ledger import ConsentChange, check_consent_time, record_consents
from gdpr.models import REDACTED_EVIDENCE, ConsentRecord, Erasure, Purpose, Source
from gdpr.policy import Reason, reason_label, with_consent_state, with_eligibility
from shop.admin import CustomerAdminPart, ReadOnlyMixin, compact_time, short_text
from shop.audit import audit_action, log_admin_action
from shop.models import Customer, Order

CONSENT_STATES = {True: _("granted"), False: _("withdrawn"), None: _("no record")}

# The legal ground in a few words, for a list cell (the full sentence, `reason_label`, on hover).
SHORT_REASONS = {
    Reason.ERASED: _("erased"),
    Reason.EXPLICIT_CONSENT: _("consent"),
    Reason.OBJECTION: _("objection"),
    Reason.NO_EXPLICIT_CONSENT: _("no consent"),
    Reason.NO_CONTRACT: _("no contract"),
    Reason.CONTRACT_RECENT: _("contract"),
    Reason.CONTRACT_STALE: _("contract, old data"),
    Reason.CONTRACT_FUTURE: _("contract, future dates"),
}

# The marker erasure leaves in the ledger is stored in English (a trigger checks it); shown translated.
_REDACTED_SHOWN = _("[redacted: right to erasure]")

GRANT = audit_action("consent_grant", _("consent grant recorded"))
WITHDRAWAL = audit_action("consent_withdrawal", _("consent withdrawal recorded"))
EXPORT = audit_action("consent_export", _("consent evidence exported"))
ERASURE = audit_action("erasure", _("people erased (right to erasure)"))


def shown_evidence(evidence: str) -> str:
    return str(_REDACTED_SHOWN) if evidence == REDACTED_EVIDENCE else evidence


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
    title = _("presence in the Clerk feed")
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

    def clean_at(self):
        # Checked with the other fields: every error of the form in one round.
        at = self.cleaned_data["at"]
        check_consent_time(at, now=timezone.now())
        return at


class ErasureForm(forms.Form):
    reference = forms.CharField(
        label=_("reference"),
        required=False,
        max_length=200,
        help_text=_("Ticket or request number. Never the person's name or email."),
    )


def _from_page(request, queryset) -> str | None:
    """The customer's page the action was started from (its button), if it was."""
    if request.POST.get("_from_page") != "1":
        return None
    pks = list(queryset.values_list("pk", flat=True)[:2])
    return reverse("admin:shop_customer_change", args=[pks[0]]) if len(pks) == 1 else None


def _done(request, queryset):
    """After the action: back to the customer's page it was started from, else to the list."""
    page = _from_page(request, queryset)
    return HttpResponseRedirect(page) if page else None


def _action_page(modeladmin, request, queryset, *, template, title, form, action, extra=None):
    """An intermediate page that posts back to the change list with the same selection."""
    back = _from_page(request, queryset)
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
        "back_url": back or reverse("admin:shop_customer_changelist"),
        "from_page": back is not None,
        **(extra or {}),
    }
    return TemplateResponse(request, template, context)


# --- consent records inline --------------------------------------------------------------------
class ConsentRecordInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]
    fields = ["purpose", "granted", "at", "source", "evidence_shown", "recorded_by", "recorded_at", "redacted_at"]
    readonly_fields = fields
    verbose_name_plural = _("consent history (ledger)")

    @admin.display(description=_("evidence"))
    def evidence_shown(self, obj):
        return shown_evidence(obj.evidence)


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
    full = reason_label(obj.eligibility_code)
    return format_html('<span title="{}">{}</span>', full, SHORT_REASONS.get(obj.eligibility_code, full))


@admin.display(description=_("why (legal ground)"))
def legal_ground(obj):
    return reason_label(obj.eligibility_code)


@admin.display(description=_("at Clerk"))
def clerk_outbox(obj):
    """What Clerk may hold of the person, and the outbox rows for them and their orders."""
    held = is_held(object_type=ObjectType.CUSTOMERS, object_id=obj.pk)
    summary = (
        _("A feed handed this customer out to Clerk and no deletion has been queued since.")
        if held
        else _("Clerk holds no copy of this customer that we know of.")
    )
    orders = Order.objects.filter(customer_id=obj.pk).values("pk")
    rows = list(
        ClerkDeletion.objects.filter(
            Q(object_type=ObjectType.CUSTOMERS, object_id=obj.pk)
            | Q(action="forget", object_id=obj.pk)
            | Q(object_type=ObjectType.ORDERS, object_id__in=orders)
        ).order_by("-created_at", "-id")[:50]
    )
    if not rows:
        return format_html("<p>{}</p><p>{}</p>", summary, _("No deletion was ever queued for this person."))
    header = format_html_join(
        "", "<th>{}</th>", [(h,) for h in (_("queued at"), _("what"), _("reason"), _("status"), _("delivered at"))]
    )
    body = format_html_join(
        "",
        '<tr class="outbox-row"><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
        [
            (
                compact_time(r.created_at),
                # A push has its own admin page (`clerk.admin_push`), a deletion or forget this one.
                reverse(f"admin:clerk_{'clerkpush' if r.action == 'push' else 'clerkdeletion'}_change", args=[r.pk]),
                str(r),
                r.get_reason_display(),
                r.get_status_display(),
                compact_time(r.delivered_at),
            )
            for r in rows
        ],
    )
    return format_html(
        '<p>{}</p><table class="clerk-outbox"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        summary,
        header,
        body,
    )


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
            last_queued = ClerkDeletion.objects.order_by("-id").values_list("id", flat=True).first() or 0
            try:
                record_consents(changes, recorded_by=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                ids = [c.customer_id for c in changes]
                log_admin_action(request.user, GRANT if granted else WITHDRAWAL, Customer, people=len(changes), ids=ids)
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
                message = message % {"count": len(changes)}
                if not granted:
                    message = f"{message} {_queued_message(last_queued)}"
                modeladmin.message_user(request, message, messages.SUCCESS)
                outranked = _outranked(changes, purpose=data["purpose"], granted=granted)
                if outranked:
                    modeladmin.message_user(request, _outranked_message(outranked), messages.WARNING)
                if skipped:
                    modeladmin.message_user(request, _skipped_message(skipped), messages.INFO)
                return _done(request, queryset)
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
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    log_admin_action(request.user, EXPORT, Customer, people=len(ids), ids=ids)
    return _csv_response(records)


@admin.action(description=_("Erase the selected people (right to erasure)"), permissions=["erase"])
def erase_selected(modeladmin, request, queryset):
    targets = queryset.filter(erased_at__isnull=True)
    if "confirm" in request.POST:
        form = ErasureForm(request.POST)
        if form.is_valid():
            erased = []
            for pk in targets.order_by("pk").values_list("pk", flat=True):
                try:
                    erase_person(customer_id=pk, requested_by=request.user, reference=form.cleaned_data["reference"])
                except NothingToErase:
                    continue
                erased.append(pk)
            log_admin_action(request.user, ERASURE, Customer, people=len(erased), ids=erased)
            modeladmin.message_user(
                request,
                ngettext(
                    "Erased %(count)d person; their deletion at Clerk is queued.",
                    "Erased %(count)d people; their deletion at Clerk is queued.",
                    len(erased),
                )
                % {"count": len(erased)},
                messages.SUCCESS,
            )
            return _done(request, queryset)
    else:
        form = ErasureForm()
    return _action_page(
        modeladmin,
        request,
        targets,
        template="admin/gdpr/erase_confirmation.html",
        title=_("Erase people's data (right to erasure)"),
        form=form,
        action="erase_selected",
    )


CONSENT_PART = CustomerAdminPart(
    columns=(sharing_state, marketing_state, in_clerk_feed, eligibility),
    list_filter=(InFeedFilter, SharingConsentFilter, MarketingConsentFilter, RecentFilter, ErasedFilter),
    feed_fields=(in_clerk_feed, legal_ground, sharing_state, marketing_state),
    fieldsets=((_("Sent to and deleted at Clerk"), {"fields": (clerk_outbox,)}),),
    inlines=(ConsentRecordInline,),
    actions=(record_grant, record_withdrawal, export_consent_csv, erase_selected),
    page_actions=(
        (record_grant, _("Record a grant")),
        (record_withdrawal, _("Record a withdrawal")),
        (export_consent_csv, _("Export the evidence (CSV)"), True),
        (erase_selected, _("Erase this person (right to erasure)")),
    ),
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


def _queued_message(after_id: int) -> str:
    """What the withdrawal queued at Clerk: the outbox rows written after `after_id`."""
    counts = dict(
        ClerkDeletion.objects.filter(id__gt=after_id, reason=OutboxReason.WITHDRAWAL)
        .values_list("object_type")
        .annotate(n=Count("id"))
        .values_list("object_type", "n")
    )
    customers, orders = counts.get(ObjectType.CUSTOMERS, 0), counts.get(ObjectType.ORDERS, 0)
    if not customers and not orders:
        return str(_("Nothing was queued for deletion at Clerk: none of it was in the feed."))
    parts = []
    if customers:
        parts.append(ngettext("%(count)d customer", "%(count)d customers", customers) % {"count": customers})
    if orders:
        parts.append(ngettext("%(count)d order", "%(count)d orders", orders) % {"count": orders})
    return str(_("Queued for deletion at Clerk: %(what)s.")) % {"what": str(_(" and ")).join(parts)}


def _skipped_message(count: int) -> str:
    return ngettext("%(count)d erased customer was skipped.", "%(count)d erased customers were skipped.", count) % {
        "count": count
    }


def _csv_response(records) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    # The byte-order mark first: without it Excel reads the file as ANSI ("NiccolÃ²").
    lines = itertools.chain(["\ufeff"], csv_lines(consent_rows(records)))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-evidence-{stamp}.csv"'
    return response


# --- consent records ---------------------------------------------------------------------------
@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "when",
        "customer",
        "purpose",
        "granted",
        "source",
        "short_evidence",
        "recorded_by",
        "recorded",
    ]
    list_display_links = ["when"]
    list_filter = ["purpose", "granted", "source", "at", ("redacted_at", admin.EmptyFieldListFilter)]
    search_fields = ["customer__email", "customer__name", "=customer__id"]
    list_select_related = ["customer", "recorded_by"]
    date_hierarchy = "at"
    actions = ["export_csv"]

    readonly_fields = ["evidence_shown"]
    exclude = ["evidence"]

    @admin.display(description=_("evidence"))
    def evidence_shown(self, obj):
        return shown_evidence(obj.evidence)

    @admin.display(description=_("evidence"))
    def short_evidence(self, obj):
        return short_text(shown_evidence(obj.evidence), 30)

    @admin.display(description=_("at"), ordering="at")
    def when(self, obj):
        return compact_time(obj.at)

    @admin.display(description=_("recorded at"), ordering="recorded_at")
    def recorded(self, obj):
        return compact_time(obj.recorded_at)

    @admin.action(description=_("Export consent evidence (CSV)"), permissions=["view"])
    def export_csv(self, request, queryset):
        people = queryset.values("customer_id").distinct().count()
        log_admin_action(request.user, EXPORT, ConsentRecord, people=people)
        return _csv_response(queryset)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "when",
        "requested_by",
        "short_reference",
        "customers",
        "orders_erased",
        "records_redacted",
        "deletions_queued",
    ]
    list_filter = ["at", ("requested_by", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["reference"]

    @admin.display(description=_("erased at"), ordering="at")
    def when(self, obj):
        return compact_time(obj.at)

    @admin.display(description=_("reference"))
    def short_reference(self, obj):
        return short_text(obj.reference, 24)

    @admin.display(description=_("customer ids"))
    def customers(self, obj):
        return short_text(", ".join(str(i) for i in obj.customer_ids), 24)
