"""Deleted shop objects and data that aged out are queued for deletion at Clerk."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from gdpr.models import ClerkDeletion, Reason, SweepMark
from gdpr.sweep import sweep_aged_out
from shop.models import Product
from tests.factories import CategoryFactory, ConsentRecordFactory, CustomerFactory, OrderFactory, PageFactory, ProductFactory

pytestmark = pytest.mark.django_db


def queued(object_type, reason=None):
    qs = ClerkDeletion.objects.filter(object_type=object_type)
    if reason:
        qs = qs.filter(reason=reason)
    return sorted(qs.values_list("object_id", flat=True))


def test_deleting_products_categories_pages_queues_their_deletion():
    products = [ProductFactory(), ProductFactory()]
    category, page = CategoryFactory(), PageFactory()
    category_id, page_id, product_ids = category.pk, page.pk, sorted(p.pk for p in products)
    Product.objects.filter(pk__in=product_ids).delete()
    category.delete()
    page.delete()
    assert queued("products", Reason.DELETED) == product_ids
    assert queued("categories") == [category_id]
    assert queued("pages") == [page_id]


def test_deleting_an_order_queues_it():
    order = OrderFactory()
    order_id = order.pk
    order.delete()
    assert queued("orders") == [order_id]


def test_a_rolled_back_delete_queues_nothing():
    product = ProductFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        product.delete()
        raise RuntimeError("abort")
    assert ClerkDeletion.objects.count() == 0


def ago(days, *, now):
    return now - dt.timedelta(days=days)


def test_sweep_queues_what_aged_out_since_the_last_pass_once():
    now = timezone.now()
    SweepMark.objects.create(name="aged_out", swept_until=now)
    # Registered 729 days ago: in the window today, out of it in two days.
    ageing = CustomerFactory(registered_at=ago(729, now=now))
    ageing_order = OrderFactory(customer=CustomerFactory(), placed_at=ago(729, now=now))
    consented = CustomerFactory(registered_at=ago(729, now=now))
    ConsentRecordFactory(customer=consented, at=ago(729, now=now))  # explicit consent never ages
    fresh = CustomerFactory()

    report = sweep_aged_out(now=now + dt.timedelta(days=2))
    assert queued("customers", Reason.AGED_OUT) == [ageing.pk]
    assert queued("orders", Reason.AGED_OUT) == [ageing_order.pk]
    assert (report.customers, report.orders) == (1, 1)
    assert fresh.pk not in queued("customers") and consented.pk not in queued("customers")

    # The next pass looks only at what aged out since: nothing is queued twice.
    again = sweep_aged_out(now=now + dt.timedelta(days=3))
    assert (again.customers, again.orders) == (0, 0)
    assert ClerkDeletion.objects.count() == 2


def test_first_sweep_looks_back_one_window_and_command_prints_summary(capsys):
    old = CustomerFactory(registered_at=timezone.now() - dt.timedelta(days=1000))
    CustomerFactory()
    call_command("gdpr_sweep")
    assert "1 customer(s)" in capsys.readouterr().out
    assert queued("customers", Reason.AGED_OUT) == [old.pk]
    assert SweepMark.objects.get().swept_until > timezone.now() - dt.timedelta(minutes=1)
