"""Django admin for the shop's catalogue, pages and orders.

Customers are not registered here: their admin shows consent state and the GDPR policy, so it
lives in `gdpr/admin.py` (shop must not import gdpr).

`updated_at` is the feed-relevant change time Clerk's incremental imports read, so an edit made
here moves it to now (`FeedObjectAdmin.save_related`): when the form or any inline changed
(a category membership, an order line), not on a save that changed nothing. Moving a category
to another parent also moves the `updated_at` of the old and the new parent, whose feed objects
list their subcategories. Lists never count a million rows (`show_full_result_count = False`).

An erased order, and any order of an erased customer, is read-only: nothing may type an erased
person's data back (a POST is refused). No order can be given to an erased customer.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shop.models import Category, Order, OrderLine, Page, Product, ProductCategory


class FeedObjectAdmin(admin.ModelAdmin):
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


class ProductCategoryInline(admin.TabularInline):
    model = ProductCategory
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
        "customer_id",
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

    @admin.display(description=_("lines"), ordering="_lines")
    def line_count(self, obj: Order) -> int:
        return obj._lines

    @admin.display(description=_("buyer"))
    def buyer(self, obj: Order) -> str:
        return _("customer") if obj.customer_id is not None else _("guest")
