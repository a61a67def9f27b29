"""Importing the same file twice changes nothing; a change moves `updated_at`, and only then: an
unchanged object is never written, whatever `updated_at` the file gives."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from gdpr.ledger import record_consent
from gdpr.models import ConsentRecord, Purpose, Source
from shop.models import Category, Customer, Order
from tests.shop.helpers import T0, import_cleanly, import_shop, page, shop_objects, updated_times, write_json
from tests.shop.test_import_roundtrip import full_feed

pytestmark = pytest.mark.django_db

_import = import_cleanly


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
    ids=[
        "price",
        "translation",
        "attribute",
        "membership",
        "index",
        "page-title",
        "line-quantity",
        "line-removed",
        "customer-field",
    ],
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
    older = {
        "purpose": "third_party_sharing",
        "granted": True,
        "at": T0 - 100 * 86_400,
        "source": "admin",
        "evidence": "x",
    }
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


# (type, index in full_feed(), id, a change of what the feed shows)
ONE_OF_EACH = [
    ("categories", 1, 2, lambda o: o.update(name="Moka e caffettiere")),
    ("products", 0, 10, lambda o: o.update(price=Decimal("25.00"))),
    ("pages", 0, 5, lambda o: o["title"].update(english="How to choose a moka pot")),
    ("customers", 1, 8, lambda o: o.update(zip="20100")),
    ("orders", 1, 101, lambda o: o["products"][0].update(quantity=3)),
]
EACH_IDS = [name for name, *_ in ONE_OF_EACH]


@pytest.mark.parametrize(("name", "index", "oid", "change"), ONE_OF_EACH, ids=EACH_IDS)
def test_an_unchanged_object_is_not_written_whatever_updated_at_the_file_gives(tmp_path, name, index, oid, change):
    feed = full_feed()
    import_shop(write_json(tmp_path / "first.json", feed))
    before = updated_times()
    feed[name][index]["updated_at"] = T0 - 500  # older: writing it would hide later changes
    run = import_shop(write_json(tmp_path / "second.json", feed))
    assert f"{name} 0 created, 0 updated, {len(feed[name])} unchanged" in run.stdout
    assert updated_times() == before


@pytest.mark.parametrize(("name", "index", "oid", "change"), ONE_OF_EACH, ids=EACH_IDS)
def test_a_changed_object_stores_the_given_updated_at(tmp_path, name, index, oid, change):
    feed = full_feed()
    import_shop(write_json(tmp_path / "first.json", feed))
    before = updated_times()
    change(feed[name][index])
    feed[name][index]["updated_at"] = T0 - 500  # older than before: still the shop's own time
    run = import_shop(write_json(tmp_path / "second.json", feed))
    assert f"{name} 0 created, 1 updated, {len(feed[name]) - 1} unchanged" in run.stdout
    after = updated_times()
    assert after[(name, oid)] == dt.datetime.fromtimestamp(T0 - 500, tz=dt.UTC)
    assert _moved(before, after) == {(name, oid)}


def test_reimporting_an_unchanged_customer_moves_updated_at_back_before_a_consent_change():
    """A consent recorded here moves the customer's `updated_at` to now. The next routine import
    of the same, unchanged, customer (the shop's own older `updated_at`) is not "unchanged": it
    writes the old time back, so the incremental customers feed loses the consent change."""
    now = timezone.now()
    old = int((now - dt.timedelta(days=30)).timestamp())
    row = {"id": 9, "name": "Cy", "email": "cy@example.com", "updated_at": old}  # no contract
    _import({"customers": [row]})
    record_consent(
        customer=9,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=True,
        at=now - dt.timedelta(seconds=1),
        source=Source.ADMIN,
        evidence="signed form",
    )
    assert page("customers", limit=10, offset=0, modified_after=1) == [9]
    _import({"customers": [row]})  # the nightly import, nothing changed at the shop
    assert page("customers", limit=10, offset=0, modified_after=1) == [9]


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
