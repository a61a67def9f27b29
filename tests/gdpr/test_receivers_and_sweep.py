"""Deleted shop objects, and what Clerk holds that the policy no longer admits, are queued for
deletion at Clerk."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from clerk.models import ClerkDeletion, Reason
from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr.holdings import record_handed_out
from gdpr.models import SweepMark
from gdpr.sweep import sweep
from shop.models import Product
from tests.factories import (
    CategoryFactory,
    ConsentRecordFactory,
    CustomerFactory,
    OrderFactory,
    PageFactory,
    ProductFactory,
)

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


def hand_out(*names, now=None):
    """What an importer walk does to the holdings: every object of `names` served."""
    for name in names or ("customers", "orders"):
        b"".join(feed_chunks(name, params=FeedParams(), now=now))


def test_sweep_queues_what_aged_out_once():
    now = timezone.now()
    # Registered 729 days ago: in the window today, out of it in two days.
    ageing = CustomerFactory(registered_at=ago(729, now=now))
    ageing_order = OrderFactory(customer=CustomerFactory(), placed_at=ago(729, now=now))
    consented = CustomerFactory(registered_at=ago(729, now=now))
    ConsentRecordFactory(customer=consented, at=ago(729, now=now))  # explicit consent never ages
    fresh = CustomerFactory()
    hand_out(now=now)

    report = sweep(now=now + dt.timedelta(days=2))
    assert queued("customers", Reason.LEFT_FEED) == [ageing.pk]
    assert queued("orders", Reason.LEFT_FEED) == [ageing_order.pk]
    assert (report.customers, report.orders) == (1, 1)
    assert fresh.pk not in queued("customers") and consented.pk not in queued("customers")

    # What was queued left the holdings: nothing is queued twice.
    again = sweep(now=now + dt.timedelta(days=3))
    assert (again.customers, again.orders) == (0, 0)
    assert ClerkDeletion.objects.count() == 2


def test_the_command_sweeps_and_prints_a_summary(capsys):
    old = CustomerFactory(registered_at=timezone.now() - dt.timedelta(days=1000))
    CustomerFactory()
    record_handed_out(object_type="customers", ids=[old.pk])  # e.g. served by an earlier version
    call_command("gdpr_sweep")
    assert "1 customer(s)" in capsys.readouterr().out
    assert queued("customers", Reason.LEFT_FEED) == [old.pk]
    mark = SweepMark.objects.get()
    assert mark.swept_at > timezone.now() - dt.timedelta(minutes=1)
    assert (mark.purpose, mark.recent_days) == ("personalisation", 730)
