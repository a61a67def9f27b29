"""The consent ledger's part of the import (`gdpr.importing`): append-only, idempotent, and an
import that takes someone out of the feeds queues their deletion at Clerk."""

from __future__ import annotations

import pytest
from django.utils import timezone

from clerk.models import ClerkDeletion
from gdpr.ledger import record_consent
from gdpr.models import ConsentRecord
from gdpr.policy import eligible_customers
from shop.models import Customer
from tests.shop.helpers import import_shop, write_json

pytestmark = pytest.mark.django_db

NOW = int(timezone.now().timestamp())
DAY = 86_400


def customer(cid: int = 1, **fields) -> dict:
    return {
        "id": cid,
        "name": "Giulia Rossi",
        "email": f"giulia{cid}@example.com",
        "registered_at": NOW - 30 * DAY,
        "terms_accepted_at": NOW - 30 * DAY,
        **fields,
    }


def consent(granted: bool, days_ago: int, purpose: str = "third_party_sharing", source: str = "account") -> dict:
    return {"purpose": purpose, "granted": granted, "at": NOW - days_ago * DAY, "source": source, "evidence": "form"}


def test_an_imported_withdrawal_takes_the_customer_out_and_queues_the_deletion(tmp_path):
    import_shop(write_json(tmp_path / "a.json", {"customers": [customer()]}))
    assert list(eligible_customers().values_list("pk", flat=True)) == [1]
    run = import_shop(write_json(tmp_path / "b.json", {"customers": [customer(consents=[consent(False, 1)])]}))
    assert run.code == 0
    assert not eligible_customers().exists()
    assert list(ClerkDeletion.objects.values_list("object_type", "object_id")) == [("customers", 1)]


def test_an_import_that_ends_the_contract_queues_the_deletion_too(tmp_path):
    import_shop(write_json(tmp_path / "a.json", {"customers": [customer()]}))
    without_terms = customer()
    del without_terms["terms_accepted_at"]
    import_shop(write_json(tmp_path / "b.json", {"customers": [without_terms]}))
    assert list(ClerkDeletion.objects.values_list("object_type", "object_id")) == [("customers", 1)]


def test_consents_of_one_customer_in_one_file_are_appended_once(tmp_path):
    twice = [consent(True, 5), consent(True, 5)]
    path = write_json(tmp_path / "a.json", {"customers": [customer(consents=twice)]})
    import_shop(path)
    import_shop(path)
    assert ConsentRecord.objects.count() == 1


def test_the_same_consent_with_another_source_is_another_record(tmp_path):
    records = [consent(True, 5, source="account"), consent(True, 5, source="checkout")]
    import_shop(write_json(tmp_path / "a.json", {"customers": [customer(consents=records)]}))
    assert sorted(ConsentRecord.objects.values_list("source", flat=True)) == ["account", "checkout"]


def test_a_marketing_grant_subscribes_and_moves_the_customer(tmp_path):
    import_shop(write_json(tmp_path / "a.json", {"customers": [customer()]}))
    before = Customer.objects.get(pk=1).updated_at
    import_shop(write_json(tmp_path / "b.json", {"customers": [customer(consents=[consent(True, 1, "marketing")])]}))
    assert eligible_customers().get(pk=1).marketing_consent is True
    assert Customer.objects.get(pk=1).updated_at > before


def test_a_consent_dated_ahead_is_stored_at_the_import_time_and_not_added_again(tmp_path):
    """An entry a few minutes ahead of our clock (shop clock skew) is capped at its recording
    (`gdpr.ledger.capped_at`); importing the file again adds nothing, so the entry cannot come
    back uncapped and outrank a withdrawal recorded in between."""
    ahead = int(timezone.now().timestamp()) + 180
    entry = {"purpose": "third_party_sharing", "granted": True, "at": ahead, "source": "checkout", "evidence": "box"}
    row = customer(consents=[entry])
    del row["terms_accepted_at"]  # consent is the only ground
    path = write_json(tmp_path / "a.json", {"customers": [row]})
    start = timezone.now()
    import_shop(path)
    record = ConsentRecord.objects.get()
    assert start <= record.at <= record.recorded_at < timezone.now()
    record_consent(
        customer=1,
        purpose="third_party_sharing",
        granted=False,
        at=timezone.now(),
        source="account",
        evidence="withdrew",
    )
    run = import_shop(path)
    assert "customers 0 created, 0 updated, 1 unchanged" in run.stdout
    assert ConsentRecord.objects.count() == 2
    assert not eligible_customers().exists()
