"""The import takes the feed's own shape: what `export_feed` writes re-imports, and the example
objects of Clerk's data-feeds guide (data/clerk_guide_examples.json, copied from the guide's
"Esempio JSON" blocks) import on every database and come back through the feeds unchanged."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from feeds.params import FeedParams
from feeds.stream import feed_chunks
from shop.models import Customer, Order, Product
from tests.shop.helpers import T0, import_shop, write_json

pytestmark = pytest.mark.django_db

GUIDE = json.loads((Path(__file__).parent / "data" / "clerk_guide_examples.json").read_text(), parse_float=Decimal)


def served(name: str) -> list[dict]:
    """The feed as Clerk reads it, numbers parsed exactly."""
    return json.loads(b"".join(feed_chunks(name, params=FeedParams())), parse_float=Decimal)


def as_sets(objects: list[dict]) -> dict[int, dict]:
    """Objects by id, their id lists as sets: a product's categories and a category's
    subcategories are memberships, whose order the shop does not keep."""
    return {
        obj["id"]: {k: frozenset(v) if k in ("categories", "subcategories") else v for k, v in obj.items()}
        for obj in objects
    }


def seed_demo() -> None:
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())


# --- export_feed output re-imports --------------------------------------------------------------
@pytest.mark.parametrize("feed", ["customers", "orders", "all"])
def test_what_export_feed_writes_reimports_into_the_shop_that_made_it(tmp_path, feed):
    seed_demo()
    out = tmp_path / f"{feed}.json"
    call_command("export_feed", feed, "--out", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    exported = json.loads(out.read_bytes())
    if feed != "orders":  # customers in the feed's shape: `subscribed` both ways
        customers = exported if feed == "customers" else exported["customers"]
        assert {c["subscribed"] for c in customers} == {True, False}
    run = import_shop(out, *(() if feed == "all" else ("--type", feed)))
    assert run.code == 0, run.stderr
    assert run.stderr == ""


# --- the guide's examples ----------------------------------------------------------------------
def test_the_guides_catalogue_imports_and_comes_back_unchanged(tmp_path):
    feed = {name: GUIDE[name] for name in ("categories", "products", "pages")}
    run = import_shop(write_json(tmp_path / "guide.json", feed))
    assert run.code == 0, run.stderr
    assert Product.objects.get(pk=261).price == Decimal("99999999999999.95")
    for name in ("products", "pages", "categories"):
        assert as_sets(served(name)) == as_sets(GUIDE[name])
    assert "0 created, 0 updated, 2 unchanged" in import_shop(tmp_path / "guide.json").stdout


def test_the_guides_multi_language_products_import_and_come_back_unchanged(tmp_path, settings):
    settings.CLERK_LANGUAGES = ["english", "spanish", "italian"]
    path = write_json(tmp_path / "p.json", GUIDE["products_multi_language"])
    run = import_shop(path, "--type", "products")
    assert run.code == 0, run.stderr
    assert as_sets(served("products")) == as_sets(GUIDE["products_multi_language"])


def test_the_guides_orders_import_for_customers_the_shop_has(tmp_path):
    people = [{"id": cid, "name": "N", "email": f"c{cid}@example.com"} for cid in (456, 789)]
    import_shop(write_json(tmp_path / "c.json", people), "--type", "customers")
    run = import_shop(write_json(tmp_path / "o.json", GUIDE["orders"]), "--type", "orders")
    # The guide's third order gives "customer": "" (no customer): an id must be an integer.
    assert run.rejections == [
        "rejected orders at index 2 (id 123457): customer: must be an integer id, not a string",
    ]
    assert sorted(Order.objects.values_list("pk", flat=True)) == [123456, 123458]
    assert Order.objects.get(pk=123456).lines.count() == 3


def test_the_guides_customers_are_refused_only_for_what_breaks_the_rules(tmp_path):
    luke, leia = GUIDE["customers"]
    run = import_shop(write_json(tmp_path / "c.json", [luke, leia]), "--type", "customers")
    # Luke: "is_b2b": "false" is a string, where the guide's own table says bool.
    # Leia: her `subscribed: false` agrees with the ledger; `interests` is personal data the
    # feeds never send, so the shop does not store it.
    assert run.rejections == [
        "rejected customers at index 0 (id 135): is_b2b: must be true or false, not a string",
        "rejected customers at index 1 (id 165): interests: unknown field: customers carry only age, "
        "birth_date, consents, email, gender, id, is_b2b, name, registered_at, subscribed, "
        "terms_accepted_at, updated_at, zip",
    ]
    # Then Luke's `subscribed: true` needs its proof: a marketing consent record.
    luke["is_b2b"] = False
    run = import_shop(write_json(tmp_path / "c.json", [luke]), "--type", "customers")
    assert "subscribed: is true, but there is no marketing consent record" in run.stderr
    luke["consents"] = [{"purpose": "marketing", "granted": True, "at": T0, "source": "account"}]
    del leia["interests"]
    assert import_shop(write_json(tmp_path / "c.json", [luke, leia]), "--type", "customers").code == 0
    assert Customer.objects.count() == 2
