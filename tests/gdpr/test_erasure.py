"""Right to erasure, end to end: anonymised here, proof kept, Clerk told to forget."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from clerk.delivery import deliver_pending
from clerk.models import Action, ClerkDeletion, Status
from gdpr.erasure import NothingToErase, erase_person
from gdpr.models import REDACTED_EVIDENCE, ConsentRecord, Erasure
from gdpr.policy import eligible_customers, eligible_orders
from shop.models import Customer, Order
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

EMAIL = "Mario.Rossi@example.com"


@pytest.fixture
def mario():
    c = CustomerFactory(
        name="Mario Rossi",
        email=EMAIL,
        zip="20121",
        gender="m",
        age=41,
        birth_date=dt.date(1985, 3, 14),  # a fixed date: any day's date, 29 February included, must work
    )
    ConsentRecordFactory(customer=c, evidence="Mario Rossi ticked the box at checkout")
    return c


def test_gdpr_erase_command_end_to_end(mario, fake_clerk, capsys):
    own = OrderFactory(customer=mario)
    guest = OrderFactory(customer=None, email="mario.rossi@EXAMPLE.com", terms_accepted_at=timezone.now())
    stranger = OrderFactory(customer=None, email="luisa@example.com", terms_accepted_at=timezone.now())

    call_command("gdpr_erase", "--email", "mario.rossi@example.com", "--reference", "REQ-7")
    out = capsys.readouterr().out
    assert "1 customer(s) and 2 order(s) anonymised" in out
    assert "mario" not in out.lower()  # the summary never echoes the email

    c = Customer.objects.get(pk=mario.pk)
    assert (c.name, c.email, c.zip, c.gender, c.birth_date, c.age) == ("", "", "", "", None, None)
    assert c.erased_at is not None
    assert c.registered_at == mario.registered_at  # kept: identifies nobody, proves the contract
    for order in Order.objects.filter(pk__in=[own.pk, guest.pk]):
        assert order.email == "" and order.erased_at is not None
        assert order.lines.count() == 1  # anonymous sales history stays
    assert Order.objects.get(pk=stranger.pk).email == "luisa@example.com"

    # The proof stays, attached to the anonymous row, without the words that named him.
    record = ConsentRecord.objects.get(customer=mario)
    assert record.granted is True and record.evidence == REDACTED_EVIDENCE and record.redacted_at

    assert list(eligible_customers()) == []
    assert list(eligible_orders()) == [stranger]

    erasure = Erasure.objects.get()
    assert erasure.reference == "REQ-7" and erasure.customer_ids == [mario.pk]
    assert (erasure.orders_erased, erasure.records_redacted) == (2, 1)

    # Queued durably, then delivered to Clerk.
    report = deliver_pending()
    assert report.failed == 0 and report.retrying == 0
    assert set(ClerkDeletion.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    forgets = [c.body for c in fake_clerk.calls("/privacy/forget", "POST")]
    assert sorted(b.get("email", "") for b in forgets if "email" in b) == sorted(
        [EMAIL, "mario.rossi@example.com", "mario.rossi@EXAMPLE.com"]
    )
    assert [b["customer"] for b in forgets if "customer" in b] == [mario.pk]
    [customers_call] = fake_clerk.calls("/customers", "DELETE")
    assert json.loads(customers_call.query["customers"][0]) == [mario.pk]
    [orders_call] = fake_clerk.calls("/orders", "DELETE")
    assert json.loads(orders_call.query["orders"][0]) == sorted([own.pk, guest.pk])
    # Once delivered, the outbox no longer holds the email either.
    assert not ClerkDeletion.objects.exclude(email="").exists()


def test_erase_by_customer_id_also_takes_guest_orders_with_the_email(mario):
    guest = OrderFactory(customer=None, email=EMAIL)
    summary = erase_person(customer_id=mario.pk)
    assert (summary.customers, summary.orders) == (1, 1)
    assert Order.objects.get(pk=guest.pk).erased_at is not None
    assert ClerkDeletion.objects.filter(action=Action.FORGET, object_id=mario.pk).exists()


def test_erasure_is_one_transaction(mario, monkeypatch):
    from gdpr import erasure

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "queue_forget", boom)
    with pytest.raises(RuntimeError):
        erase_person(email=EMAIL)
    assert Customer.objects.get(pk=mario.pk).email == EMAIL
    assert ConsentRecord.objects.get().redacted_at is None
    assert ClerkDeletion.objects.count() == 0 and Erasure.objects.count() == 0


def test_nothing_to_erase_writes_nothing():
    with pytest.raises(NothingToErase):
        erase_person(email="nobody@example.com")
    with pytest.raises(CommandError, match="nothing to erase"):
        call_command("gdpr_erase", "--email", "nobody@example.com")
    assert Erasure.objects.count() == 0


def test_erasing_twice_is_harmless(mario):
    erase_person(customer_id=mario.pk)
    summary = erase_person(customer_id=mario.pk)
    assert summary.records_redacted == 0
    assert Customer.objects.get(pk=mario.pk).erased_at is not None


def test_guest_only_erasure(fake_clerk):
    guest = OrderFactory(customer=None, email="guest@example.com")
    summary = erase_person(email="guest@example.com")
    assert (summary.customers, summary.orders) == (0, 1)
    assert Order.objects.get(pk=guest.pk).email == ""
    assert ClerkDeletion.objects.filter(action=Action.FORGET, email="guest@example.com").exists()
