"""`shop.consent_hook`: gdpr registers its ledger; without one, personal data is never imported."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from gdpr.importing import LedgerForImport
from gdpr.models import ConsentRecord
from shop import consent_hook
from shop.models import Customer, Order, Product
from tests.shop.helpers import T0, import_shop, write_json, write_ndjson
from tests.shop.test_import_errors import customer, order, product

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_ledger(monkeypatch):
    monkeypatch.setattr(consent_hook, "_factory", None)


def test_gdpr_registers_its_ledger():
    assert isinstance(consent_hook.consent_ledger(), LedgerForImport)
    consent_hook.register_consent_ledger(LedgerForImport)  # the same one again: nothing changes
    with pytest.raises(RuntimeError, match="already registered"):
        consent_hook.register_consent_ledger(lambda: LedgerForImport())


@pytest.mark.usefixtures("no_ledger")
def test_without_a_ledger_a_file_with_customers_is_refused_whole(tmp_path):
    consents = [{"purpose": "third_party_sharing", "granted": True, "at": T0, "source": "account"}]
    feed = {"products": [product(1)], "customers": [customer(1, consents=consents)], "orders": [order(1)]}
    run = import_shop(write_json(tmp_path / "feed.json", feed))
    assert run.code == 2
    assert "customers and orders" in run.stderr and "no consent ledger is registered" in run.stderr
    assert "nothing was imported" in run.stderr
    assert not Product.objects.exists() and not Customer.objects.exists() and not ConsentRecord.objects.exists()


@pytest.mark.usefixtures("no_ledger")
@pytest.mark.parametrize("type_name, obj", [("customers", customer(1)), ("orders", order(1, email="g@example.com"))])
def test_without_a_ledger_no_personal_type_is_imported(tmp_path, type_name, obj):
    run = import_shop(write_ndjson(tmp_path / "x.ndjson", [obj]), "--type", type_name)
    assert run.code == 2 and "no consent ledger is registered" in run.stderr
    assert not Customer.objects.exists() and not Order.objects.exists()


@pytest.mark.usefixtures("no_ledger")
def test_without_a_ledger_the_catalogue_is_imported(tmp_path):
    run = import_shop(write_json(tmp_path / "feed.json", {"products": [product(1)]}))
    assert run.code == 0
    assert Product.objects.filter(pk=1).exists()


@pytest.mark.usefixtures("no_ledger")
def test_without_a_ledger_the_demo_is_not_seeded():
    with pytest.raises(CommandError, match="no consent ledger is registered"):
        call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    assert not Product.objects.exists() and not Customer.objects.exists()
