"""Importing the same file twice changes nothing; a change moves `updated_at`, and only then."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from gdpr.models import ConsentRecord
from shop.models import Category, Customer, Order, Product
from tests.shop.helpers import T0, import_shop, shop_objects, updated_times, write_json
from tests.shop.test_import_roundtrip import full_feed

pytestmark = pytest.mark.django_db


def feed_without_times() -> dict:
    """The full feed, without any `updated_at`: the import decides them."""
    feed = full_feed()
    for name in ("categories", "products", "pages", "customers", "orders"):
        for obj in feed[name]:
            obj.pop("updated_at")
    return feed


def test_importing_the_same_file_twice_changes_nothing(tmp_path):
    path = write_json(tmp_path / "feed.json", feed_without_times())
    import_shop(path)
    before, times, records = shop_objects(), updated_times(), ConsentRecord.objects.count()
    again = import_shop(path)
    assert again.code == 0
    assert again.stdout.strip() == (
        "import_shop: categories 0 created, 0 updated, 3 unchanged, 0 rejected; "
        "products 0 created, 0 updated, 2 unchanged, 0 rejected; "
        "pages 0 created, 0 updated, 1 unchanged, 0 rejected; "
        "customers 0 created, 0 updated, 2 unchanged, 0 rejected; "
        "orders 0 created, 0 updated, 2 unchanged, 0 rejected"
    )
    assert shop_objects() == before
    assert updated_times() == times
    assert ConsentRecord.objects.count() == records


def test_without_a_given_time_new_objects_get_the_import_time(tmp_path):
    start = timezone.now()
    import_shop(write_json(tmp_path / "feed.json", feed_without_times()))
    end = timezone.now()
    assert all(start <= t <= end for t in updated_times().values())


def _reimport_with(tmp_path, change) -> tuple[dict, dict, dt.datetime, dt.datetime]:
    """Import the feed, change it with `change(feed)`, import again; the times before and after."""
    feed = feed_without_times()
    import_shop(write_json(tmp_path / "first.json", feed))
    before = updated_times()
    changed = copy.deepcopy(feed)
    change(changed)
    start = timezone.now()
    run = import_shop(write_json(tmp_path / "second.json", changed))
    assert run.code == 0, run.stderr
    return before, updated_times(), start, timezone.now()


def _moved(before: dict, after: dict) -> set:
    return {key for key in before if before[key] != after[key]}


@pytest.mark.parametrize(
    ("change", "moved"),
    [
        (lambda f: f["products"][0].update(price=Decimal("25.00")), {("products", 10)}),
        (lambda f: f["products"][0]["name"].update(english="Moka pot"), {("products", 10)}),
        (lambda f: f["products"][0].update(stock=3), {("products", 10)}),
        (lambda f: f["products"][0].update(categories=[1]), {("products", 10)}),
        (lambda f: f["products"][1].pop("index"), {("products", 11)}),
        (lambda f: f["pages"][0]["title"].update(italian="Scegliere la moka"), {("pages", 5)}),
        (lambda f: f["orders"][0]["products"][1].update(quantity=2), {("orders", 100)}),
        (lambda f: f["orders"][0]["products"].pop(), {("orders", 100)}),
        (lambda f: f["customers"][1].update(zip="20100"), {("customers", 8)}),
    ],
    ids=["price", "translation", "attribute", "membership", "index", "page-title", "line-quantity",
         "line-removed", "customer-field"],
)
def test_a_changed_object_moves_to_the_import_time_and_only_it(tmp_path, change, moved):
    before, after, start, end = _reimport_with(tmp_path, change)
    assert _moved(before, after) == moved
    assert all(start <= after[key] <= end for key in moved)


def test_a_new_consent_that_changes_the_state_moves_the_customer(tmp_path):
    withdrawal = {"purpose": "third_party_sharing", "granted": False, "at": T0, "source": "account", "evidence": "form"}
    before, after, start, end = _reimport_with(tmp_path, lambda f: f["customers"][0]["consents"].append(withdrawal))
    assert ("customers", 7) in _moved(before, after)
    assert start <= after[("customers", 7)] <= end
    # Order eligibility follows the sharing consent: the customer's orders move too.
    assert ("orders", 100) in _moved(before, after)


def test_an_old_consent_that_does_not_change_the_state_moves_nothing(tmp_path):
    older = {"purpose": "third_party_sharing", "granted": True, "at": T0 - 100 * 86_400, "source": "admin", "evidence": "x"}
    before, after, _, _ = _reimport_with(tmp_path, lambda f: f["customers"][0]["consents"].append(older))
    assert _moved(before, after) == set()
    assert ConsentRecord.objects.filter(customer_id=7).count() == 4


def test_a_consent_seen_before_is_not_added_twice_even_with_other_evidence(tmp_path):
    def reword(feed):
        feed["customers"][0]["consents"][0]["evidence"] = "reworded"

    _reimport_with(tmp_path, reword)
    assert ConsentRecord.objects.filter(customer_id=7).count() == 3
    assert not ConsentRecord.objects.filter(evidence="reworded").exists()


def test_a_changed_subcategory_list_moves_the_parents_it_concerns(tmp_path):
    def move_tea_out(feed):
        feed["categories"][0]["subcategories"] = [2]

    before, after, start, end = _reimport_with(tmp_path, move_tea_out)
    assert _moved(before, after) == {("categories", 1)}
    assert Category.objects.get(pk=3).parent_id is None


def test_a_parent_outside_the_file_that_loses_a_child_moves(tmp_path):
    feed = feed_without_times()
    import_shop(write_json(tmp_path / "first.json", feed))
    before = updated_times()
    # Only a new category 4 arrives, and claims 3, which belonged to 1 (not in this file).
    second = {"categories": [{"id": 4, "name": "Tè e tisane", "url": "https://shop.example/c/4", "subcategories": [3]}]}
    start = timezone.now()
    assert import_shop(write_json(tmp_path / "second.json", second)).code == 0
    after = updated_times()
    assert Category.objects.get(pk=3).parent_id == 4
    assert start <= after[("categories", 1)]
    assert after[("categories", 3)] == before[("categories", 3)]


def test_a_given_updated_at_is_stored_as_given_whether_or_not_anything_changed(tmp_path):
    feed = full_feed()
    import_shop(write_json(tmp_path / "first.json", feed))
    feed["products"][0]["updated_at"] = T0 - 500  # older than before: still the shop's own time
    feed["products"][1]["price"] = Decimal("31")  # changed content, same given time
    run = import_shop(write_json(tmp_path / "second.json", feed))
    assert "products 0 created, 2 updated, 0 unchanged" in run.stdout
    assert Product.objects.get(pk=10).updated_at == dt.datetime.fromtimestamp(T0 - 500, tz=dt.UTC)
    assert Product.objects.get(pk=11).updated_at == dt.datetime.fromtimestamp(T0 + 11, tz=dt.UTC)
    assert Product.objects.get(pk=11).price == Decimal("31")


def test_a_consent_change_keeps_a_given_updated_at(tmp_path):
    feed = full_feed()
    import_shop(write_json(tmp_path / "first.json", feed))
    feed["customers"][0]["consents"].append(
        {"purpose": "third_party_sharing", "granted": False, "at": T0, "source": "account", "evidence": "form"}
    )
    run = import_shop(write_json(tmp_path / "second.json", feed))
    assert "customers 0 created, 1 updated, 1 unchanged" in run.stdout
    assert Customer.objects.get(pk=7).updated_at == dt.datetime.fromtimestamp(T0 + 30, tz=dt.UTC)


def test_an_admin_edit_is_overwritten_by_the_file_and_counted_as_an_update(tmp_path):
    path = write_json(tmp_path / "feed.json", feed_without_times())
    import_shop(path)
    Order.objects.filter(pk=101).update(email="changed@example.com")
    run = import_shop(path)
    assert "orders 0 created, 1 updated, 1 unchanged" in run.stdout
    assert Order.objects.get(pk=101).email == "guest@example.com"
