"""Django admin for the shop's catalogue, pages, orders and customers.

An edit here moves the object's `updated_at` (and moving a category moves both parents); an
erased order, or an order of an erased customer, is read-only. Customers are read-only (their
data is the shop's); other apps add columns, filters, fields, panels, inlines and actions to
their admin through one extension point: `CustomerAdmin.add_part(CustomerAdminPart(...))`
(gdpr's consent part, registered in `GdprConfig.ready`). Details: docs/import.md, "Admin".
Shared by every app's admin: `compact_time`, `short_text`, `CompactTimesMixin` (lists that fit
1366 px with the menu open), `ReadOnlyMixin`; the audit trail's list (`shop.audit`, LogEntry);
users and groups with their permissions named in the active language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import IS_POPUP_VAR, InlineModelAdmin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _

from shop.audit import AUDITED, audit_details, audit_filter
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory


# --- shared by the apps' admins: compact cells for lists that fit a laptop screen ---------------
def compact_time(value):
    """A time as a short date in a list cell, the full date and time on hover; "–" for none."""
    if value is None:
        return "–"
    local = timezone.localtime(value)
    return format_html(
        '<span title="{}">{}</span>',
        date_format(local, "DATETIME_FORMAT"),
        date_format(local, "SHORT_DATE_FORMAT"),
    )


def short_text(text, length: int):
    """The first `length` characters of `text` in a list cell, the whole text on hover."""
    text = str(text or "")
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))


class CompactTimesMixin:
    """For a model admin: its list shows each date-time column as `compact_time` (a short date,
    the full time on hover), so that lists fit a laptop screen with the menu open."""

    def get_list_display(self, request):
        return [_compact_column(self.model, name) for name in super().get_list_display(request)]


def _compact_column(model, name):
    if not isinstance(name, str):
        return name
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:  # a method or an attribute
        return name
    if not isinstance(field, models.DateTimeField):
        return name

    def column(obj):
        return compact_time(getattr(obj, name))

    column.__name__ = name  # the cell's CSS class stays "field-<name>"
    return admin.display(description=field.verbose_name, ordering=name)(column)


class ReadOnlyMixin:
    """For a model admin or an inline: pages to look at; nothing to add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # Not "Select customer to view" (in Italian its gender is often wrong): the list's name.
        title = capfirst(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title, **(extra_context or {})})


class FeedObjectAdmin(CompactTimesMixin, admin.ModelAdmin):
    """Shared by every feed object: `updated_at` is read-only and moves when an admin edits."""

    readonly_fields = ("updated_at",)
    show_full_result_count = False
    list_per_page = 50
    # Clerk wants full URLs; a bare "shop.example/p/1" typed here becomes https, never http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change and (form.has_changed() or any(formset.has_changed() for formset in formsets)):
            self.touch([form.instance.pk])
            form.instance.updated_at = timezone.now()

    def touch(self, ids) -> None:
        self.model._base_manager.filter(pk__in=ids).update(updated_at=timezone.now())


@admin.register(Category)
class CategoryAdmin(FeedObjectAdmin):
    list_display = ("id", "name", "parent", "subcategory_count", "url", "updated_at")
    list_display_links = ("id", "name")
    list_filter = (("parent", admin.EmptyFieldListFilter), "updated_at")
    search_fields = ("name", "=id", "url")
    raw_id_fields = ("parent",)
    ordering = ("id",)
    fieldsets = (
        (None, {"fields": ("id", "name", "parent", "url", "image", "description")}),
        (_("Feed"), {"fields": ("translations", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parent").annotate(_subcategories=Count("children"))

    @admin.display(description=_("subcategories"), ordering="_subcategories")
    def subcategory_count(self, obj: Category) -> int:
        return obj._subcategories

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change and "parent" in form.changed_data:
            # Both parents' feed objects list their subcategories: both changed.
            old_parent = form.initial.get("parent")
            parents = [p for p in (old_parent, form.instance.parent_id) if p is not None]
            if parents:
                self.touch(parents)


class ProductCategoryForm(forms.ModelForm):
    class Meta:
        model = ProductCategory
        fields = ("category",)
        labels = {"category": _("category")}  # the model's field has no translated name


class ProductCategoryInline(admin.TabularInline):
    model = ProductCategory
    form = ProductCategoryForm
    extra = 1
    autocomplete_fields = ("category",)
    verbose_name = _("category")
    verbose_name_plural = _("categories")


@admin.register(Product)
class ProductAdmin(FeedObjectAdmin):
    list_display = ("id", "name", "price", "list_price", "brand", "index", "created_at", "updated_at")
    list_display_links = ("id", "name")
    list_filter = ("index", "created_at", "updated_at")
    search_fields = ("name", "=id", "brand")
    ordering = ("id",)
    inlines = (ProductCategoryInline,)
    fieldsets = (
        (None, {"fields": ("id", "name", "description", "brand", "index")}),
        (_("Prices"), {"fields": ("price", "list_price")}),
        (_("Links"), {"fields": ("url", "image")}),
        (_("Feed"), {"fields": ("created_at", "attributes", "translations", "updated_at")}),
    )


@admin.register(Page)
class PageAdmin(FeedObjectAdmin):
    list_display = ("id", "title", "type", "url", "updated_at")
    list_display_links = ("id", "title")
    list_filter = ("type", "updated_at")
    search_fields = ("title", "=id", "url")
    ordering = ("id",)
    fieldsets = (
        (None, {"fields": ("id", "type", "title", "text", "url", "image")}),
        (_("Feed"), {"fields": ("attributes", "translations", "updated_at")}),
    )


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ("product_id", "quantity", "unit_price")
    verbose_name = _("order line")
    verbose_name_plural = _("order lines")


class GuestOrderFilter(admin.SimpleListFilter):
    title = _("buyer")
    parameter_name = "buyer"

    def lookups(self, request, model_admin):
        return [("guest", _("guest")), ("customer", _("registered customer"))]

    def queryset(self, request, queryset):
        if self.value() == "guest":
            return queryset.filter(customer__isnull=True)
        if self.value() == "customer":
            return queryset.filter(customer__isnull=False)
        return queryset


class OrderForm(forms.ModelForm):
    def clean_customer(self):
        customer = self.cleaned_data.get("customer")
        if customer is not None and customer.erased_at is not None:
            raise forms.ValidationError(
                _("Customer %(id)s was erased (right to erasure): no order can be given to them."),
                code="erased_customer",
                params={"id": customer.pk},
            )
        return customer


def erased_person(order: Order) -> bool:
    """The order, or its customer, was erased: an erased person's data must never come back."""
    return order.erased_at is not None or (order.customer is not None and order.customer.erased_at is not None)


@admin.register(Order)
class OrderAdmin(FeedObjectAdmin):
    form = OrderForm
    list_display = (
        "id",
        "customer_number",
        "buyer",
        "placed_at",
        "line_count",
        "terms_accepted_at",
        "erased_at",
        "updated_at",
    )
    list_filter = (GuestOrderFilter, "placed_at", ("erased_at", admin.EmptyFieldListFilter), "updated_at")
    search_fields = ("=id", "=customer__id", "email")
    raw_id_fields = ("customer",)
    date_hierarchy = "placed_at"
    ordering = ("-placed_at", "-id")
    inlines = (OrderLineInline,)
    readonly_fields = ("updated_at", "erased_at")
    fieldsets = (
        (None, {"fields": ("id", "customer", "email", "placed_at", "terms_accepted_at")}),
        (_("Feed"), {"fields": ("erased_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_lines=Count("lines"))

    def has_change_permission(self, request, obj=None):
        if obj is not None and erased_person(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # The anonymous sales history stays.
        if obj is not None and erased_person(obj):
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("customer id"), ordering="customer_id")
    def customer_number(self, obj: Order):
        return obj.customer_id if obj.customer_id is not None else "–"

    @admin.display(description=_("lines"), ordering="_lines")
    def line_count(self, obj: Order) -> int:
        return obj._lines

    @admin.display(description=_("buyer"))
    def buyer(self, obj: Order) -> str:
        return _("customer") if obj.customer_id is not None else _("guest")


# --- customers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerAdminPart:
    """What one app adds to the customer admin. Columns and fields are callables taking a
    customer (`@admin.display`); actions are admin actions `(modeladmin, request, queryset)`
    whose `@admin.action(permissions=[name])` names are mapped to Django permissions here. A page
    action runs on the one customer whose page it is (posted like the list's action, with
    `_from_page` set: the action may send the admin back to the page)."""

    columns: Sequence[Callable[[Customer], Any]] = ()  # list columns, after id, name and email
    list_filter: Sequence[Any] = ()  # before the shop's own filters
    feed_fields: Sequence[Callable[[Customer], Any]] = ()  # first in the change page's "Clerk feed"
    fieldsets: Sequence[tuple[Any, dict[str, Any]]] = ()  # more panels, after the shop's
    inlines: Sequence[type[InlineModelAdmin]] = ()  # after the shop's (none)
    actions: Sequence[Callable[..., Any]] = ()
    # Buttons on a customer's page: (one of `actions`, its label[, whether it applies to an erased customer]).
    page_actions: Sequence[tuple] = ()
    permissions: Mapping[str, str] = field(default_factory=dict)  # action permission -> "app.codename"
    queryset: Callable[[QuerySet], QuerySet] | None = None  # annotates the list's and the page's query

    def __post_init__(self) -> None:
        unmapped = {p for a in self.actions for p in getattr(a, "allowed_permissions", ())} - set(self.permissions)
        if unmapped:
            raise ValueError(f"no Django permission given for the action permissions {sorted(unmapped)}")
        if not {func for func, *_rest in self.page_actions} <= set(self.actions):
            raise ValueError("every page action must also be one of the part's actions")

    def allows(self, request, action: Callable[..., Any]) -> bool:
        return all(request.user.has_perm(self.permissions[p]) for p in getattr(action, "allowed_permissions", ()))


@admin.register(Customer)
class CustomerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: customer data is the shop's (imports overwrite it), and customers are never
    deleted here. Other apps' parts (`add_part`) are read at every request."""

    parts: ClassVar[list[CustomerAdminPart]] = []
    contact_columns = ("id", "name", "email")
    time_columns = ("registered", "updated")
    list_display = (*contact_columns, *time_columns)
    list_display_links = ("id", "name")
    list_filter = ("registered_at",)
    search_fields = ("email", "name")
    list_per_page = 50
    show_full_result_count = False  # the count of a million-row filtered list is a full scan
    # The auditor's questions first: who, in the Clerk feed or not and why, the contract.
    fieldsets = (
        (None, {"fields": ("id", "name", "email")}),
        (_("Clerk feed"), {"fields": ("updated_at", "erased_at")}),
        (_("Contract"), {"fields": ("registered_at", "terms_accepted_at")}),
        (_("Profile"), {"fields": ("zip", "gender", "birth_date", "age", "is_b2b"), "classes": ("collapse",)}),
    )

    @admin.display(description=_("registered at"), ordering="registered_at")
    def registered(self, obj: Customer):
        return compact_time(obj.registered_at)

    @admin.display(description=_("updated at"), ordering="updated_at")
    def updated(self, obj: Customer):
        return compact_time(obj.updated_at)

    @classmethod
    def add_part(cls, part: CustomerAdminPart) -> None:
        """The extension point: `part` joins every customer list and page from now on."""
        if part not in cls.parts:
            cls.parts.append(part)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        for part in self.parts:
            if part.queryset is not None:
                queryset = part.queryset(queryset)
        return queryset

    def get_list_display(self, request):
        added = [column for part in self.parts for column in part.columns]
        return [*self.contact_columns, *added, *self.time_columns]

    def get_list_filter(self, request):
        return [*(f for part in self.parts for f in part.list_filter), *self.list_filter]

    def get_fieldsets(self, request, obj=None):
        main, (feed_title, feed), contract, profile = self.fieldsets
        feed_fields = [*(f for part in self.parts for f in part.feed_fields), *feed["fields"]]
        panels = [fieldset for part in self.parts for fieldset in part.fieldsets]
        return [main, (feed_title, {**feed, "fields": feed_fields}), contract, *panels, profile]

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def get_inlines(self, request, obj):
        return [*self.inlines, *(inline for part in self.parts for inline in part.inlines)]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET:
            return actions
        for part in self.parts:
            for func in part.actions:
                if part.allows(request, func):
                    name = func.__name__
                    description = getattr(func, "short_description", capfirst(name.replace("_", " ")))
                    actions[name] = (func, name, description)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        erased = customer is not None and customer.erased_at is not None
        buttons = [
            (func.__name__, label)
            for part in self.parts
            for func, label, *for_erased in part.page_actions
            if part.allows(request, func) and (not erased or (for_erased and for_erased[0]))
        ]
        return super().change_view(request, object_id, form_url, {"page_actions": buttons, **(extra_context or {})})


# --- the audit trail ---------------------------------------------------------------------------
class AuditActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "audit"

    def lookups(self, request, model_admin):
        return [(key, label) for key, label in AUDITED.items()]

    def queryset(self, request, queryset):
        if self.value() in AUDITED:
            return queryset.filter(change_message__startswith=audit_filter(self.value()))
        return queryset


@admin.register(LogEntry)
class AuditTrailAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every admin action of consequence (`shop.audit`) and Django's own edits: who, when, what."""

    list_display = ("action_time", "user", "what", "people", "kind", "ids")
    list_filter = (("user", admin.RelatedOnlyFieldListFilter), AuditActionFilter, "action_time")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"
    list_display_links = None
    list_per_page = 50
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Admin audit trail"), **(extra_context or {})})

    @admin.display(description=_("action"))
    def what(self, entry: LogEntry) -> str:
        details = audit_details(entry)
        if details is None:
            return {1: _("added"), 2: _("changed"), 3: _("deleted")}.get(entry.action_flag, "?")
        return str(AUDITED.get(details[0], details[0]))

    @admin.display(description=_("people or rows"))
    def people(self, entry: LogEntry):
        details = audit_details(entry)
        return 1 if details is None else details[1]

    @admin.display(description=_("object type"))
    def kind(self, entry: LogEntry):
        model = entry.content_type.model_class() if entry.content_type_id else None
        return capfirst(model._meta.verbose_name_plural) if model else "–"

    @admin.display(description=_("ids"))
    def ids(self, entry: LogEntry):
        return short_text(entry.object_repr, 40)


# --- users and groups: permissions by their names in the active language ------------------------
PERMISSION_ACTIONS = {
    "add": _("can add %(model)s"),
    "change": _("can change %(model)s"),
    "delete": _("can delete %(model)s"),
    "view": _("can view %(model)s"),
}


def permission_label(permission: Permission) -> str:
    """ "Shop | can view customer", translated (Django stores the names in English)."""
    model = permission.content_type.model_class()
    action = PERMISSION_ACTIONS.get(permission.codename.split("_", 1)[0])
    if model is None or action is None:
        return str(permission)
    return f"{model._meta.app_config.verbose_name} | {action % {'model': model._meta.verbose_name}}"


class _TranslatedPermissions:
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.remote_field.model is Permission:
            formfield.label_from_instance = permission_label
        return formfield


admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class ShopUserAdmin(_TranslatedPermissions, UserAdmin):
    pass


@admin.register(Group)
class ShopGroupAdmin(_TranslatedPermissions, GroupAdmin):
    pass
