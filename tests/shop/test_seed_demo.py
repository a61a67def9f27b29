"""`manage.py seed_demo`: a deterministic demo shop that shows every case of the GDPR policy."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import CommandError, call_command

from gdpr.models import ConsentRecord
from gdpr.policy import eligibility_reason, eligible_orders
from shop.demo import PERSONAS, build_demo
from shop.models import Category, Customer, Order, OrderLine, Page, Product
from tests.shop.helpers import updated_times

pytestmark = pytest.mark.django_db

SMALL = {"products": 15, "customers": 10, "orders": 50}


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO(), **{**SMALL, **options})
    return out.getvalue()


def test_the_demo_is_the_same_for_the_same_options():
    anchor = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert build_demo(anchor=anchor, seed=3) == build_demo(anchor=anchor, seed=3)
    assert build_demo(anchor=anchor, seed=3) != build_demo(anchor=anchor, seed=4)


def test_seeding_prints_one_summary_line_with_the_sizes_asked_for():
    output = seed()
    assert output.count("\n") == 1
    assert output.startswith("seed_demo: categories 15 created")
    assert "products 15 created" in output and "customers 10 created" in output and "orders 50 created" in output
    assert output.rstrip().endswith("1 customer(s) erased")
    assert (Product.objects.count(), Customer.objects.count(), Order.objects.count()) == (15, 10, 50)


def test_seeding_twice_changes_nothing():
    seed()
    times, records = updated_times(), ConsentRecord.objects.count()
    output = seed()
    assert re.findall(r"(\d+) (?:created|updated)", output) == ["0"] * 10
    assert "0 customer(s) erased" in output
    assert updated_times() == times
    assert ConsentRecord.objects.count() == records


def test_every_consent_case_of_the_policy_is_there():
    seed()
    codes = {persona: eligibility_reason(Customer.objects.get(pk=i)).code for i, persona in enumerate(PERSONAS, 1)}
    assert codes == {
        "explicit_consent": "explicit_consent",
        "objection": "objection",
        "contract_recent": "contract_recent",
        "contract_old": "contract_stale",
        "no_contract": "no_contract",
        "marketing_granted": "contract_recent",
        "marketing_withdrawn": "contract_recent",
        "erased": "erased",
    }
    marketing = {
        pk: granted
        for pk, granted in ConsentRecord.objects.filter(purpose="marketing")
        .order_by("at")
        .values_list("customer_id", "granted")
    }
    assert marketing == {6: True, 7: False}
    erased = Customer.objects.get(pk=8)
    assert (erased.name, erased.email, erased.erased_at is not None) == ("", "", True)


def test_orders_are_old_and_new_from_customers_and_guests_with_and_without_terms():
    seed()
    guests = Order.objects.filter(customer__isnull=True)
    assert guests.filter(terms_accepted_at__isnull=False).exists()
    assert guests.filter(terms_accepted_at__isnull=True).exists()
    in_feed = set(eligible_orders().values_list("pk", flat=True))
    assert 0 < len(in_feed) < Order.objects.count()
    # Some lines name products the shop no longer sells: history is kept.
    assert OrderLine.objects.filter(product_id__gte=900_000).exists()


def test_texts_are_in_italian_and_english():
    seed()
    product = Product.objects.get(pk=1)
    assert set(product.translations) == {"italian", "english"}
    assert product.name == product.translations["italian"]["name"]
    assert set(Category.objects.get(pk=11).translations) == {"italian", "english"}
    assert Page.objects.filter(type="blog").exists() and Page.objects.filter(type="cms").exists()
    assert Product.objects.filter(index=False).exists()
    assert {"color_names", "reviews_avg", "stock"} <= set(product.attributes)
    assert Category.objects.get(pk=11).parent_id == 1


def test_too_few_customers_for_every_case_is_refused():
    with pytest.raises(CommandError, match="at least 8"):
        seed(customers=5)
