"""The shop's admin: lists, search, and `updated_at` moving when (and only when) an admin edits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone, translation

from shop.models import Category, Order, OrderLine, Page, Product, ProductCategory
from tests.conftest import HTTPSClient
from tests.factories import CategoryFactory, CustomerFactory, OrderFactory, PageFactory, ProductFactory

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.make_aware(dt.datetime(2020, 1, 1, 12, 0))
# What a browser sends for fields whose default is callable (Django compares against them).
JSON_INITIALS = {"initial-attributes": "{}", "initial-translations": "{}"}


@pytest.fixture
def admin():
    user = get_user_model().objects.create_superuser("shopadmin", "admin@shop.example", "pw")
    client = HTTPSClient()
    client.force_login(user)
    return client


def change_url(obj) -> str:
    return reverse(f"admin:shop_{obj._meta.model_name}_change", args=[obj.pk])


def page_data(page: Page, **changes) -> dict:
    data = {
        "id": page.id,
        "type": page.type,
        "title": page.title,
        "text": page.text,
        "url": page.url,
        "image": page.image,
        "attributes": "{}",
        "translations": "{}",
        "_save": "Save",
        **JSON_INITIALS,
    }
    return {**data, **changes}


def product_data(product: Product, categories: list[Category], **changes) -> dict:
    data = {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "brand": product.brand,
        "index": "on",
        "price": str(product.price),
        "list_price": "",
        "url": product.url,
        "image": product.image,
        "created_at_0": product.created_at.strftime("%Y-%m-%d"),
        "created_at_1": product.created_at.strftime("%H:%M:%S"),
        "attributes": "{}",
        "translations": "{}",
        "productcategory_set-TOTAL_FORMS": len(categories),
        "productcategory_set-INITIAL_FORMS": len(categories),
        "productcategory_set-MIN_NUM_FORMS": 0,
        "productcategory_set-MAX_NUM_FORMS": 1000,
        "_save": "Save",
        **JSON_INITIALS,
    }
    for i, membership in enumerate(ProductCategory.objects.filter(product=product).order_by("id")):
        data.update(
            {
                f"productcategory_set-{i}-id": membership.id,
                f"productcategory_set-{i}-product": product.id,
                f"productcategory_set-{i}-category": membership.category_id,
            }
        )
    return {**data, **changes}


def order_data(order: Order, **changes) -> dict:
    lines = list(order.lines.order_by("id"))
    data = {
        "id": order.id,
        "customer": order.customer_id or "",
        "email": order.email,
        "placed_at_0": order.placed_at.strftime("%Y-%m-%d"),
        "placed_at_1": order.placed_at.strftime("%H:%M:%S"),
        "terms_accepted_at_0": "",
        "terms_accepted_at_1": "",
        "lines-TOTAL_FORMS": len(lines),
        "lines-INITIAL_FORMS": len(lines),
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
        "_save": "Save",
    }
    for i, line in enumerate(lines):
        data.update(
            {
                f"lines-{i}-id": line.id,
                f"lines-{i}-order": order.id,
                f"lines-{i}-product_id": line.product_id,
                f"lines-{i}-quantity": line.quantity,
                f"lines-{i}-unit_price": str(line.unit_price),
            }
        )
    return {**data, **changes}


def test_every_changelist_and_search_answers(admin):
    category = CategoryFactory(name="Cucina")
    ProductFactory(name="Moka", categories=[category])
    PageFactory(title="Chi siamo")
    order = OrderFactory()  # its id depends on the factories' sequence: search for it as it is
    for model, query in (("category", "Cucina"), ("product", "Moka"), ("page", "siamo"), ("order", str(order.pk))):
        response = admin.get(reverse(f"admin:shop_{model}_changelist"), {"q": query})
        assert response.status_code == 200, model
        assert len(response.context["cl"].result_list) == 1, model


def test_customers_are_registered_by_shop_with_gdpr_adding_its_consent_part():
    from django.contrib import admin as django_admin

    from gdpr.admin import CONSENT_PART
    from shop.models import Customer

    customer_admin = django_admin.site._registry[Customer]
    assert type(customer_admin).__module__ == "shop.admin"
    assert type(customer_admin).parts == [CONSENT_PART]


def test_without_parts_the_customer_admin_is_the_shop_s_alone(admin, monkeypatch):
    from shop.admin import CustomerAdmin

    monkeypatch.setattr(CustomerAdmin, "parts", [])
    customer = CustomerFactory(name="Anna")
    listing = admin.get(reverse("admin:shop_customer_changelist"))
    assert listing.status_code == 200 and "Anna" in listing.content.decode()
    assert "field-in_clerk_feed" not in listing.content.decode()
    assert not listing.context["cl"].model_admin.get_actions(listing.wsgi_request)
    page = admin.get(reverse("admin:shop_customer_change", args=[customer.pk]))
    assert page.status_code == 200 and "field-erased_at" in page.content.decode()
    assert "consent history" not in page.content.decode()


def test_a_part_adds_a_panel_an_inline_and_an_action_to_the_customer_page(admin, monkeypatch):
    from django.contrib import admin as django_admin

    from shop.admin import CustomerAdmin, CustomerAdminPart

    @django_admin.display(description="Loyalty tier")
    def tier(obj):
        return "gold"

    @django_admin.action(description="Send a gift", permissions=["gift"])
    def send_gift(modeladmin, request, queryset):
        modeladmin.message_user(request, f"gifts for {queryset.count()}")

    class OrderInline(django_admin.TabularInline):
        model = Order
        fields = ("id", "placed_at")
        readonly_fields = fields
        extra = 0

    part = CustomerAdminPart(
        fieldsets=(("Loyalty", {"fields": (tier,)}),),
        inlines=(OrderInline,),
        actions=(send_gift,),
        permissions={"gift": "shop.view_order"},
    )
    monkeypatch.setattr(CustomerAdmin, "parts", [*CustomerAdmin.parts, part])
    order = OrderFactory()
    page = admin.get(reverse("admin:shop_customer_change", args=[order.customer_id])).content.decode()
    assert "Loyalty tier" in page and "gold" in page and 'id="orders-group"' in page
    response = admin.post(
        reverse("admin:shop_customer_changelist"),
        {"action": "send_gift", "_selected_action": [order.customer_id]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["gifts for 1"]
    with pytest.raises(ValueError, match="gift"):
        CustomerAdminPart(actions=(send_gift,))


def test_editing_a_page_moves_its_updated_at(admin):
    page = PageFactory(updated_at=LONG_AGO)
    start = timezone.now()
    response = admin.post(change_url(page), page_data(page, title="New title"))
    assert response.status_code == 302
    page.refresh_from_db()
    assert page.title == "New title" and page.updated_at >= start


def test_saving_without_a_change_keeps_updated_at(admin):
    page = PageFactory(updated_at=LONG_AGO)
    assert admin.post(change_url(page), page_data(page)).status_code == 302
    page.refresh_from_db()
    assert page.updated_at == LONG_AGO


def test_changing_only_a_category_membership_moves_the_product(admin):
    kitchen, tea = CategoryFactory(), CategoryFactory()
    product = ProductFactory(categories=[kitchen], updated_at=LONG_AGO)
    start = timezone.now()
    data = product_data(product, [kitchen])
    data["productcategory_set-0-category"] = tea.id
    response = admin.post(change_url(product), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    product.refresh_from_db()
    assert list(product.categories.values_list("id", flat=True)) == [tea.id]
    assert product.updated_at >= start


def test_changing_only_an_order_line_moves_the_order(admin):
    order = OrderFactory(lines=[(1, 1, Decimal("10.00"))], updated_at=LONG_AGO)
    start = timezone.now()
    data = order_data(order)
    data["lines-0-quantity"] = 3
    response = admin.post(change_url(order), data)
    assert response.status_code == 302
    order.refresh_from_db()
    assert OrderLine.objects.get(order=order).quantity == 3
    assert order.updated_at >= start


def test_moving_a_category_moves_both_parents(admin):
    old, new = CategoryFactory(updated_at=LONG_AGO), CategoryFactory(updated_at=LONG_AGO)
    child = CategoryFactory(parent=old, updated_at=LONG_AGO)
    untouched = CategoryFactory(updated_at=LONG_AGO)
    start = timezone.now()
    data = {
        "id": child.id,
        "name": child.name,
        "parent": new.id,
        "url": child.url,
        "image": "",
        "description": "",
        "translations": "{}",
        "_save": "Save",
        **JSON_INITIALS,
    }
    assert admin.post(change_url(child), data).status_code == 302
    times = dict(Category.objects.values_list("id", "updated_at"))
    assert all(times[c.id] >= start for c in (old, new, child))
    assert times[untouched.id] == LONG_AGO


def test_the_admin_labels_are_translated_to_italian(admin):
    OrderFactory()
    try:
        response = admin.get(reverse("admin:shop_order_changelist"), HTTP_ACCEPT_LANGUAGE="it")
    finally:
        translation.activate(settings.LANGUAGE_CODE)  # the request left Italian active
    html = response.content.decode()
    assert "Acquirente" in html and "Righe" in html
