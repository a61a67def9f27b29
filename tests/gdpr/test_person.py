"""An objection or an erasure follows the person: every email they have had, casefolded; an
erased person's data never comes back (import, admin); "recent" is bounded by now."""

from __future__ import annotations

import datetime as dt
import io

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from clerk.models import ClerkDeletion, ObjectType
from gdpr.erasure import erase_person
from gdpr.ledger import record_consent
from gdpr.models import ConsentRecord, Purpose, Source
from gdpr.policy import (
    Reason,
    eligibility_reason,
    eligible_customers,
    eligible_orders,
    reason_label,
)
from shop.models import Customer, CustomerEmail, Order
from tests.conftest import HTTPSClient
from tests.factories import CustomerFactory, OrderFactory
from tests.shop.helpers import import_cleanly, import_shop, write_json

pytestmark = pytest.mark.django_db

LINE = [{"id": 1, "quantity": 1, "price": 5}]


def feed(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return orjson.loads(b"".join(response.streaming_content) if response.streaming else response.content)


def feed_ids(client) -> dict[str, set[int]]:
    """The ids of the customers and orders feeds and of the single feed's two sections."""
    single = feed(client, "/feed/all.json")
    return {
        "customers": {o["id"] for o in feed(client, "/feed/customers.json")},
        "orders": {o["id"] for o in feed(client, "/feed/orders.json")},
        "all.customers": {o["id"] for o in single["customers"]},
        "all.orders": {o["id"] for o in single["orders"]},
    }


def object_ids(object_type: str) -> list[int]:
    rows = ClerkDeletion.objects.filter(object_type=object_type).values_list("object_id", flat=True)
    return sorted(rows)


def forgotten_emails() -> set[str]:
    return set(ClerkDeletion.objects.exclude(email="").values_list("email", flat=True))


def withdraw(customer_id: int) -> None:
    record_consent(
        customer=customer_id,
        purpose=Purpose.THIRD_PARTY_SHARING,
        granted=False,
        at=timezone.now(),
        source=Source.ACCOUNT,
        evidence="objected",
    )


def unix(days: float) -> int:
    return int((timezone.now() + dt.timedelta(days=days)).timestamp())


# --- the objection follows the person's emails ---------------------------------------------------
def test_an_objector_with_a_new_email_keeps_the_guest_orders_of_the_old_one_out_of_every_feed(feed_client):
    """The tester's row: the objector's guest order (old email, terms accepted) stays out of
    `/feed/orders.json` and `all.json` after an import gives them a new email."""
    month_ago = unix(-30)
    customer = {
        "id": 37,
        "name": "Ola",
        "email": "ola@example.com",
        "registered_at": month_ago,
        "terms_accepted_at": month_ago,
    }
    guest = {"id": 370, "email": "Ola@Example.com", "time": month_ago, "terms_accepted_at": month_ago, "products": LINE}
    import_cleanly({"customers": [customer], "orders": [guest]})
    assert 370 in feed_ids(feed_client)["orders"]
    withdraw(37)
    import_cleanly({"customers": [dict(customer, email="ola.new@example.com")]})
    assert feed_ids(feed_client) == {"customers": set(), "orders": set(), "all.customers": set(), "all.orders": set()}
    assert object_ids(ObjectType.ORDERS) == [370]
    assert set(CustomerEmail.objects.filter(customer_id=37).values_list("email_key", flat=True)) == {
        "ola@example.com",
        "ola.new@example.com",
    }


def test_a_withdrawal_queues_the_guest_orders_of_every_email_the_customer_has_had():
    customer = CustomerFactory(email="first@example.com")
    customer.email = "second@example.com"
    customer.save()
    old = OrderFactory(customer=None, email="FIRST@example.com", terms_accepted_at=timezone.now())
    new = OrderFactory(customer=None, email="second@example.com", terms_accepted_at=timezone.now())
    other = OrderFactory(customer=None, email="third@example.com", terms_accepted_at=timezone.now())
    assert set(eligible_orders().values_list("pk", flat=True)) == {old.pk, new.pk, other.pk}
    withdraw(customer.pk)
    assert list(eligible_orders().values_list("pk", flat=True)) == [other.pk]
    assert object_ids(ObjectType.ORDERS) == sorted([old.pk, new.pk])


CASEFOLD_PAIRS = [
    ("Élise.Obj@example.com", "élise.obj@example.com"),  # SQLite's LOWER() folds ASCII only
    ("STRASSE@example.com", "straße@example.com"),  # casefold, not lower: ß is ss
    ("İnci@example.com", "i̇nci@example.com"),  # İ folds to i and a combining dot
    (" Ada@Example.com", "ada@example.com "),
]


@pytest.mark.parametrize(("customer_email", "guest_email"), CASEFOLD_PAIRS)
def test_the_objection_covers_every_casefold_spelling(customer_email, guest_email, feed_client):
    objector = CustomerFactory(email=customer_email)
    guest = OrderFactory(customer=None, email=guest_email, terms_accepted_at=timezone.now())
    withdraw(objector.pk)
    assert feed_ids(feed_client)["orders"] == set()
    assert object_ids(ObjectType.ORDERS) == [guest.pk]


def test_casefold_keeps_apart_what_it_does_not_fold():
    """ "İnci" folds to "i̇nci", not to "inci": another person's guest order stays in."""
    objector = CustomerFactory(email="İnci@example.com")
    guest = OrderFactory(customer=None, email="inci@example.com", terms_accepted_at=timezone.now())
    withdraw(objector.pk)
    assert list(eligible_orders().values_list("pk", flat=True)) == [guest.pk]


@pytest.mark.parametrize(("customer_email", "guest_email"), CASEFOLD_PAIRS)
def test_gdpr_erase_by_email_finds_every_casefold_spelling(customer_email, guest_email):
    objector = CustomerFactory(email=customer_email)
    guest = OrderFactory(customer=None, email=guest_email, terms_accepted_at=timezone.now())
    out = io.StringIO()
    call_command("gdpr_erase", "--email", guest_email.upper(), stdout=out)
    assert "1 customer(s) and 1 order(s) anonymised" in out.getvalue()
    objector.refresh_from_db()
    guest.refresh_from_db()
    assert objector.erased_at is not None and objector.email == objector.email_key == ""
    assert guest.erased_at is not None and guest.email == guest.email_key == ""
    # Clerk may have been sent either spelling, and the one asked for.
    assert forgotten_emails() == {customer_email, guest_email, guest_email.upper().strip()}


# --- erasure follows the person's emails --------------------------------------------------------
def test_erasure_by_an_old_email_finds_the_customer_and_everything_of_every_email_they_had():
    customer = CustomerFactory(email="Old@example.com")
    own = OrderFactory(customer=customer)
    customer.email = "new@example.com"
    customer.save()
    old_guest = OrderFactory(customer=None, email="OLD@example.com", terms_accepted_at=timezone.now())
    new_guest = OrderFactory(customer=None, email="New@Example.com")
    # Another customer's order placed with the person's email is theirs too (Clerk links by email).
    stranger = CustomerFactory(email="stranger@example.com")
    borrowed = OrderFactory(customer=stranger, email="new@example.com")
    unrelated = OrderFactory(customer=None, email="someone@example.com")

    summary = erase_person(email="old@EXAMPLE.com")

    assert (summary.customers, summary.orders) == (1, 4)
    erased = set(Order.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    assert erased == {own.pk, old_guest.pk, new_guest.pk, borrowed.pk}
    assert Order.objects.get(pk=unrelated.pk).email == "someone@example.com"
    assert not CustomerEmail.objects.filter(customer=customer).exists()
    assert CustomerEmail.objects.filter(customer=stranger).exists()
    assert forgotten_emails() == {
        "old@EXAMPLE.com",
        "Old@example.com",
        "new@example.com",
        "OLD@example.com",
        "New@Example.com",
        own.email,
    }


def test_erasure_by_customer_covers_the_guest_orders_of_their_old_emails():
    customer = CustomerFactory(email="before@example.com")
    customer.email = "after@example.com"
    customer.save()
    old_guest = OrderFactory(customer=None, email="Before@example.com")
    summary = erase_person(customer_id=customer.pk)
    assert summary.orders == 1
    old_guest.refresh_from_db()
    assert old_guest.erased_at is not None and old_guest.email == ""
    assert "Before@example.com" in forgotten_emails() and "before@example.com" in forgotten_emails()


# --- an import never restores an erased person --------------------------------------------------
def test_a_reimport_keeps_an_erased_customer_and_their_orders_erased(tmp_path):
    month_ago = unix(-30)
    customer = {
        "id": 37,
        "name": "Ola",
        "email": "ola@example.com",
        "zip": "1000",
        "registered_at": month_ago,
        "terms_accepted_at": month_ago,
    }
    order = {"id": 370, "customer": 37, "email": "ola@example.com", "time": month_ago, "products": LINE}
    path = write_json(tmp_path / "shop.json", {"customers": [customer], "orders": [order]})
    assert import_shop(path).code == 0
    erase_person(customer_id=37)
    consent = {
        "purpose": "third_party_sharing",
        "granted": True,
        "at": month_ago,
        "source": "import",
        "evidence": "signed",
    }
    again = {
        "customers": [dict(customer, email="ola.new@example.com", consents=[consent], registered_at=unix(-20))],
        # The erased order, and a new order of the erased customer.
        "orders": [order, dict(order, id=371)],
    }
    records = ConsentRecord.objects.count()
    run = import_shop(write_json(tmp_path / "again.json", again))

    assert run.code == 0, run.stderr
    assert "customer 37 was erased (right to erasure): personal data not restored" in run.stderr
    assert "order 370 was erased (right to erasure): personal data not restored" in run.stderr
    assert "its customer 37 was erased (right to erasure): personal data not restored" in run.stderr
    assert "ola" not in run.stderr  # the report names ids, never the person
    assert "customers 0 created, 0 updated, 0 unchanged, 0 rejected, 1 kept erased" in run.stdout
    assert "orders 0 created, 0 updated, 0 unchanged, 0 rejected, 2 kept erased" in run.stdout
    stored = Customer.objects.get(pk=37)
    assert (stored.name, stored.email, stored.email_key, stored.zip) == ("", "", "", "")
    # Nothing of the row is written, not even its dates: the row is a tombstone.
    assert int(stored.registered_at.timestamp()) == month_ago
    assert not CustomerEmail.objects.filter(customer_id=37).exists()
    assert ConsentRecord.objects.count() == records
    assert Order.objects.get(pk=370).email == ""
    assert not Order.objects.filter(pk=371).exists()


def test_an_import_keeps_email_keys_and_history():
    import_cleanly(
        {
            "customers": [{"id": 5, "name": "Elise", "email": "Élise@Example.com"}],
            "orders": [{"id": 50, "email": "STRAßE@example.com", "time": unix(-1), "products": LINE}],
        }
    )
    assert Customer.objects.get(pk=5).email_key == "élise@example.com"
    assert Order.objects.get(pk=50).email_key == "strasse@example.com"
    import_cleanly({"customers": [{"id": 5, "name": "Elise", "email": "elise@example.com"}]})
    assert sorted(CustomerEmail.objects.filter(customer_id=5).values_list("email", "email_key")) == [
        ("elise@example.com", "elise@example.com"),
        ("Élise@Example.com", "élise@example.com"),
    ]


# --- the admin never types an erased person's data back ------------------------------------------
@pytest.fixture
def admin():
    client = HTTPSClient()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@shop.example", "pw"))
    return client


def order_form(order: Order, **changes) -> dict:
    data = {
        "id": order.pk,
        "customer": order.customer_id or "",
        "email": order.email,
        "placed_at_0": order.placed_at.strftime("%Y-%m-%d"),
        "placed_at_1": order.placed_at.strftime("%H:%M:%S"),
        "terms_accepted_at_0": "",
        "terms_accepted_at_1": "",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_an_erased_order_is_read_only_in_the_admin(admin):
    order = OrderFactory(customer=None, email="gone@example.com")
    erase_person(email="gone@example.com")
    order.refresh_from_db()
    url = reverse("admin:shop_order_change", args=[order.pk])
    page = admin.get(url)
    assert page.status_code == 200
    assert b'name="email"' not in page.content  # shown read-only, no input to type into
    response = admin.post(url, order_form(order, email="gone@example.com"))
    assert response.status_code == 403
    order.refresh_from_db()
    assert (order.email, order.email_key) == ("", "")
    assert admin.post(reverse("admin:shop_order_delete", args=[order.pk]), {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_an_order_of_an_erased_customer_is_read_only_and_none_can_be_given_to_them(admin):
    customer = CustomerFactory()
    erase_person(customer_id=customer.pk)
    # An order the erasure did not see (written around the services): still read-only.
    late = Order.objects.create(id=900, customer=customer, email="", placed_at=timezone.now())
    response = admin.post(
        reverse("admin:shop_order_change", args=[late.pk]), order_form(late, email="back@example.com")
    )
    assert response.status_code == 403
    assert Order.objects.get(pk=900).email == ""
    live = OrderFactory(customer=None, email="guest@example.com")
    response = admin.post(reverse("admin:shop_order_change", args=[live.pk]), order_form(live, customer=customer.pk))
    assert response.status_code == 200
    assert "was erased (right to erasure)" in response.content.decode()
    assert Order.objects.get(pk=live.pk).customer_id is None


def test_an_order_email_edited_in_the_admin_gets_its_key(admin):
    order = OrderFactory(customer=None, email="guest@example.com")
    response = admin.post(
        reverse("admin:shop_order_change", args=[order.pk]), order_form(order, email="Guest@Bücher.Example")
    )
    assert response.status_code == 302, (response.context["adminform"].form.errors, response.context["errors"])
    order.refresh_from_db()
    assert (order.email, order.email_key) == ("Guest@Bücher.Example", "guest@bücher.example")


# --- no time from the future ---------------------------------------------------------------------
def test_an_order_dated_2100_keeps_no_stale_contract_customer_in_the_feeds(feed_client):
    """The tester's row: a contract customer registered 13 years ago with an order dated 2100."""
    registered = timezone.now() - dt.timedelta(days=13 * 365)
    customer = CustomerFactory(registered_at=registered, terms_accepted_at=registered)
    OrderFactory(customer=customer, placed_at=dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    assert feed_ids(feed_client) == {"customers": set(), "orders": set(), "all.customers": set(), "all.orders": set()}
    verdict = eligibility_reason(customer)
    assert (verdict.eligible, verdict.code) == (False, Reason.CONTRACT_FUTURE)
    assert "future" in verdict.reason


@pytest.mark.parametrize(
    ("ahead", "in_feed"),
    [(dt.timedelta(hours=23), True), (dt.timedelta(days=1), True), (dt.timedelta(days=1, seconds=1), False)],
)
def test_a_time_counts_up_to_a_day_ahead(ahead, in_feed):
    now = timezone.now()
    registered = CustomerFactory(registered_at=now + ahead, terms_accepted_at=now)
    stale = CustomerFactory(registered_at=now - dt.timedelta(days=3000), terms_accepted_at=now)
    order = OrderFactory(customer=stale, placed_at=now + ahead)
    guest = OrderFactory(customer=None, placed_at=now + ahead, terms_accepted_at=now)
    customers = set(eligible_customers(now=now).values_list("pk", flat=True))
    orders = set(eligible_orders(now=now).values_list("pk", flat=True))
    assert customers == ({registered.pk, stale.pk} if in_feed else set())
    assert orders == ({order.pk, guest.pk} if in_feed else set())
    code = Reason.CONTRACT_RECENT if in_feed else Reason.CONTRACT_FUTURE
    assert eligibility_reason(registered, now=now).code == code


def test_the_reason_for_a_future_date_speaks_italian():
    with translation.override("it"):
        assert "futuro" in reason_label(Reason.CONTRACT_FUTURE)
