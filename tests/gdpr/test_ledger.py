"""The consent ledger: append-only, records the actor, moves updated_at, queues feed exits."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clerk.models import ClerkDeletion
from feeds.params import FeedParams
from feeds.stream import feed_chunks
from gdpr.ledger import ConsentChange, record_consent, record_consents, redact_evidence
from gdpr.models import REDACTED_EVIDENCE, AppendOnlyError, ConsentRecord, Purpose, Source
from shop.models import Customer, Order
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def withdraw(customer, **kw):
    return record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=False,
        at=timezone.now(),
        source=Source.ADMIN,
        evidence="Customer asked by email, ticket 42.",
        **kw,
    )


def queued(object_type):
    return sorted(ClerkDeletion.objects.filter(object_type=object_type).values_list("object_id", flat=True))


def page(feed, *, limit, offset, client="importer", now=None, modified_after=None):
    params = FeedParams(limit=limit, offset=offset, modified_after=modified_after)
    return [o["id"] for o in orjson.loads(b"".join(feed_chunks(feed, params=params, client=client, now=now)))]


# --- append-only -------------------------------------------------------------------------------
def test_saving_an_existing_record_is_refused():
    record = ConsentRecordFactory()
    record.evidence = "rewritten"
    with pytest.raises(AppendOnlyError):
        record.save()
    assert ConsentRecord.objects.get().evidence != "rewritten"


def test_deleting_a_record_is_refused():
    record = ConsentRecordFactory()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.all().delete()
    assert ConsentRecord.objects.count() == 1


def test_queryset_update_is_refused():
    ConsentRecordFactory()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.update(granted=False)
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(granted=True).update(evidence="")
    assert ConsentRecord.objects.get().granted is True


def test_deleting_a_customer_with_records_is_refused():
    from django.db.models import ProtectedError

    record = ConsentRecordFactory()
    with pytest.raises(ProtectedError):
        record.customer.delete()


def test_raw_sql_cannot_rewrite_history_on_postgresql():
    """On PostgreSQL a trigger refuses raw UPDATE/DELETE; SQLite has no trigger (documented)."""
    record = ConsentRecordFactory()
    table = ConsentRecord._meta.db_table
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
            assert cursor.fetchone()[0] == 0
        return
    for sql in (
        f"UPDATE {table} SET granted = false",
        f"DELETE FROM {table}",
        f"UPDATE {table} SET evidence = 'x', redacted_at = now()",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    assert ConsentRecord.objects.get(pk=record.pk).granted is True


def test_redaction_is_the_one_allowed_change():
    record = ConsentRecordFactory(evidence="Mario Rossi ticked the box, mario@example.com")
    other = ConsentRecordFactory()
    at = timezone.now()
    assert redact_evidence(customer_ids=[record.customer_id], at=at) == 1
    redacted = ConsentRecord.objects.get(pk=record.pk)
    assert redacted.evidence == REDACTED_EVIDENCE and redacted.redacted_at == at
    assert (redacted.purpose, redacted.granted, redacted.at) == (record.purpose, record.granted, record.at)
    assert ConsentRecord.objects.get(pk=other.pk).evidence == other.evidence
    # Twice is harmless and changes nothing.
    assert redact_evidence(customer_ids=[record.customer_id], at=timezone.now()) == 0


# --- what recording does -----------------------------------------------------------------------
def test_record_consent_stores_the_acting_admin_and_source():
    user = get_user_model().objects.create_user("anna", password="x", is_staff=True)
    c = CustomerFactory()
    record = withdraw(c, recorded_by=user)
    record.refresh_from_db()
    assert record.recorded_by == user
    assert record.source == Source.ADMIN
    assert record.evidence.startswith("Customer asked")


def test_recording_moves_customer_and_order_updated_at():
    old = timezone.now() - dt.timedelta(days=100)
    c = CustomerFactory(updated_at=old)
    o = OrderFactory(customer=c, updated_at=old)
    before = timezone.now()
    withdraw(c)
    assert Customer.objects.get(pk=c.pk).updated_at >= before
    assert Order.objects.get(pk=o.pk).updated_at >= before


def test_marketing_record_moves_customer_but_not_orders():
    old = timezone.now() - dt.timedelta(days=100)
    c = CustomerFactory(updated_at=old)
    o = OrderFactory(customer=c, updated_at=old)
    record_consent(
        customer=c,
        purpose=Purpose.MARKETING,
        granted=True,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="newsletter box",
    )
    assert Customer.objects.get(pk=c.pk).updated_at > old
    assert Order.objects.get(pk=o.pk).updated_at == old


def test_withdrawal_queues_deletion_of_customer_and_feed_orders():
    c = CustomerFactory()
    recent = OrderFactory(customer=c)
    OrderFactory(customer=c, placed_at=timezone.now() - dt.timedelta(days=2000))  # never in the feed
    other = CustomerFactory()
    withdraw(c)
    assert queued("customers") == [c.pk]
    assert queued("orders") == [recent.pk]
    assert set(ClerkDeletion.objects.values_list("reason", flat=True)) == {"withdrawal"}
    assert other.pk not in queued("customers")


def test_withdrawal_of_a_customer_not_in_the_feed_queues_nothing():
    c = CustomerFactory(terms_accepted_at=None)
    withdraw(c)
    assert ClerkDeletion.objects.count() == 0


def test_grant_queues_nothing():
    c = CustomerFactory(terms_accepted_at=None)
    record_consent(
        customer=c,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=True,
        at=timezone.now(),
        source=Source.CHECKOUT,
        evidence="box ticked",
    )
    assert ClerkDeletion.objects.count() == 0


def test_withdrawing_twice_queues_once():
    c = CustomerFactory()
    withdraw(c)
    withdraw(c)
    assert queued("customers") == [c.pk]


def test_bulk_recording_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    customers = [CustomerFactory() for _ in range(30)]
    for c in customers:
        OrderFactory(customer=c)
    changes = [
        ConsentChange(c.pk, Purpose.THIRD_PARTY_SHARING, False, timezone.now(), Source.ADMIN, "bulk") for c in customers
    ]
    # 20, the holdings of both types (`gdpr.holdings`: clear the bits, drop emptied blocks), and
    # the feeds' positions of both types (`feeds.listing`: the exits unlisted)
    with django_assert_max_num_queries(26):
        record_consents(changes)
    assert len(queued("customers")) == 30 and len(queued("orders")) == 30


@pytest.mark.parametrize(
    "change, code",
    [
        (dict(purpose="newsletter"), "unknown_purpose"),
        (dict(source="phone"), "unknown_source"),
        (dict(at=dt.datetime(2024, 1, 1)), "naive_time"),
        (dict(at=timezone.now() + dt.timedelta(days=1)), "future_time"),
    ],
)
def test_invalid_records_are_refused(change, code):
    c = CustomerFactory()
    kw = (
        dict(customer=c, purpose=Purpose.MARKETING, granted=True, at=timezone.now(), source=Source.ADMIN, evidence="e")
        | change
    )
    with pytest.raises(ValidationError) as exc:
        record_consent(**kw)
    assert exc.value.code == code
    assert ConsentRecord.objects.count() == 0


def test_an_erased_customer_cannot_get_consent_back():
    c = CustomerFactory(erased_at=timezone.now())
    with pytest.raises(ValidationError) as exc:
        record_consent(
            customer=c,
            purpose=Purpose.THIRD_PARTY_SHARING,
            granted=True,
            at=timezone.now(),
            source=Source.ADMIN,
            evidence="e",
        )
    assert exc.value.code == "erased_customer"


def test_a_failed_batch_writes_nothing():
    c = CustomerFactory()
    changes = [
        ConsentChange(c.pk, Purpose.THIRD_PARTY_SHARING, False, timezone.now(), Source.ADMIN, "ok"),
        ConsentChange(999999, Purpose.THIRD_PARTY_SHARING, False, timezone.now(), Source.ADMIN, "bad id"),
    ]
    with pytest.raises(ValidationError):
        record_consents(changes)
    assert ConsentRecord.objects.count() == 0 and ClerkDeletion.objects.count() == 0


# --- a record's time is capped at its recording --------------------------------------------------
def test_grant_dated_within_the_clock_skew_outranks_a_later_real_withdrawal():
    """The ledger accepts records up to 5 minutes in the future, and the state is the latest by
    `at`: a grant dated now+4 min beats a withdrawal the customer makes a minute later (dated
    now), permanently. The objection is recorded, queues nothing, and the customer stays in."""
    customer = CustomerFactory(registered_at=None, terms_accepted_at=None)  # consent is the only ground
    now = timezone.now()
    record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=True,
        at=now + dt.timedelta(minutes=4),
        source=Source.CHECKOUT,
        evidence="box ticked (shop clock ahead)",
    )
    record_consent(
        customer=customer,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=False,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="withdrew on the account page",
    )
    later = now + dt.timedelta(hours=1)
    assert page("customers", limit=10, offset=0, now=later) == []


def test_a_record_dated_ahead_is_stored_at_its_recording_time():
    c = CustomerFactory()
    before = timezone.now()
    record = record_consent(
        customer=c,
        purpose=Purpose.MARKETING,
        granted=True,
        at=before + dt.timedelta(minutes=4),
        source=Source.CHECKOUT,
        evidence="e",
    )
    stored = ConsentRecord.objects.get(pk=record.pk)
    assert before <= stored.at <= stored.recorded_at <= timezone.now()
    assert record.at == stored.at
    # A past time is kept as given.
    past = before - dt.timedelta(days=3)
    assert (
        record_consent(
            customer=c, purpose=Purpose.MARKETING, granted=False, at=past, source=Source.ACCOUNT, evidence="e"
        ).at
        == past
    )


# --- an objection covers the person's guest orders ---------------------------------------------
def test_an_objection_queues_the_deletion_of_the_guest_orders_placed_with_the_email():
    c = CustomerFactory(email="Anna@Example.com")
    guest = OrderFactory(customer=None, email="anna@example.COM", terms_accepted_at=timezone.now())
    stranger = OrderFactory(customer=None, email="bruno@example.com", terms_accepted_at=timezone.now())
    withdraw(c)
    assert queued("orders") == [guest.pk]
    assert page("orders", limit=10, offset=0) == [stranger.pk]


def test_a_regrant_brings_the_guest_orders_back_into_incremental_feeds():
    long_ago = timezone.now() - dt.timedelta(days=30)
    c = CustomerFactory(email="anna@example.com", updated_at=long_ago)
    guest = OrderFactory(
        customer=None, email="ANNA@example.com", terms_accepted_at=long_ago, placed_at=long_ago, updated_at=long_ago
    )
    withdraw(c)
    Order.objects.filter(pk=guest.pk).update(updated_at=long_ago)
    assert page("orders", limit=10, offset=0) == []
    record_consent(
        customer=c,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=True,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="account page toggle",
    )
    assert page("orders", limit=10, offset=0, modified_after=1) == [guest.pk]
