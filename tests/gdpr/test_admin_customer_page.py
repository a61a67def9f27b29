"""The auditor's screens: a customer's page, the messages, the names, the audit trail."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from clerk.delivery import deliver_pending
from clerk.models import ClerkDeletion, Status
from clerk.outbox import queue_deletions
from gdpr.erasure import erase_person
from gdpr.models import ConsentRecord, Erasure, Purpose, Source
from shop.audit import audit_details
from shop.models import Order
from tests.conftest import HTTPSClient
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:shop_customer_changelist")


@pytest.fixture
def boss():
    return get_user_model().objects.create_superuser("boss", "boss@shop.example", "pw")


@pytest.fixture
def admin(boss):
    client = HTTPSClient()
    client.force_login(boss)
    return client


def page(customer) -> str:
    return reverse("admin:shop_customer_change", args=[customer.pk])


def withdrawal(**extra):
    at = timezone.now() - dt.timedelta(hours=1)
    return {
        "apply": "1",
        "purpose": Purpose.THIRD_PARTY_SHARING,
        "at_0": at.strftime("%Y-%m-%d"),
        "at_1": at.strftime("%H:%M:%S"),
        "source": Source.ADMIN,
        "evidence": "Phone call, ticket 4711",
        **extra,
    }


def test_the_page_answers_in_feed_legal_ground_ledger_and_outbox(admin, boss):
    anna = CustomerFactory(name="Anna")
    order = OrderFactory(customer=anna)
    ConsentRecordFactory(customer=anna, evidence="Ticked the box on 3 May", recorded_by=boss)
    queue_deletions(object_type="orders", ids=[order.pk], reason="left_feed")
    html = admin.get(page(anna)).content.decode()
    assert "In Clerk feed" in html and "Why (legal ground)" in html and "explicit consent to sharing" in html
    assert "Ticked the box on 3 May" in html and "boss" in html  # the ledger: what, who
    assert "Sent to and deleted at Clerk" in html and f"Delete order {order.pk}" not in html
    assert f"delete order {order.pk}" in html and "no longer eligible" in html and "pending" in html
    # The actions, as buttons posting this one customer to the list's actions.
    for name in ("record_grant", "record_withdrawal", "export_consent_csv", "erase_selected"):
        assert f'name="action" value="{name}"' in html
    assert f'name="_selected_action" value="{anna.pk}"' in html


def test_the_buttons_follow_the_permissions(boss):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    viewer.user_permissions.add(Permission.objects.get(codename="view_consentrecord"))
    client = HTTPSClient()
    client.force_login(viewer)
    customer = CustomerFactory()
    html = client.get(page(customer)).content.decode()
    assert 'value="export_consent_csv"' in html
    assert 'value="record_withdrawal"' not in html and 'value="erase_selected"' not in html
    client.post(CHANGELIST, {"action": "record_withdrawal", "_selected_action": [customer.pk], **withdrawal()})
    assert ConsentRecord.objects.count() == 0


def test_a_withdrawal_from_the_page_returns_there_and_names_the_queued_deletions(admin):
    anna = CustomerFactory()
    OrderFactory(customer=anna)
    OrderFactory(customer=anna)
    form = admin.post(CHANGELIST, {"action": "record_withdrawal", "_selected_action": [anna.pk], "_from_page": "1"})
    assert 'name="_from_page" value="1"' in form.content.decode()  # the form keeps where it came from
    assert f'href="{page(anna)}"' in form.content.decode()  # cancel goes back to the page
    data = {"action": "record_withdrawal", "_selected_action": [anna.pk], "_from_page": "1", **withdrawal()}
    response = admin.post(CHANGELIST, data)
    assert response.status_code == 302 and response["Location"] == page(anna)
    followed = admin.get(response["Location"]).content.decode()
    assert "Recorded a withdrawal for 1 customer. Queued for deletion at Clerk: 1 customer and 2 orders." in followed
    assert followed.count('class="outbox-row"') == 3


def test_a_withdrawal_that_queues_nothing_says_so(admin):
    anna = CustomerFactory(terms_accepted_at=None)  # not in the feed: nothing to delete at Clerk
    response = admin.post(
        CHANGELIST, {"action": "record_withdrawal", "_selected_action": [anna.pk], **withdrawal()}, follow=True
    )
    assert "Nothing was queued for deletion at Clerk" in response.content.decode()


def test_every_form_error_is_reported_at_once(admin):
    customer = CustomerFactory()
    future = timezone.now() + dt.timedelta(days=3)
    data = withdrawal(evidence=" ", at_0=future.strftime("%Y-%m-%d"), at_1="00:00:00")
    html = admin.post(CHANGELIST, {"action": "record_withdrawal", "_selected_action": [customer.pk], **data})
    html = html.content.decode()
    assert "Evidence is required" in html and "lies in the future" in html
    assert ConsentRecord.objects.count() == 0


def test_left_out_erased_customers_are_information_not_an_error(admin):
    live, erased = CustomerFactory(), CustomerFactory(erased_at=timezone.now(), email="")
    html = admin.post(CHANGELIST, {"action": "record_grant", "_selected_action": [live.pk, erased.pk]})
    html = html.content.decode()
    assert re.search(r'<li class="info">\s*1 erased customer is left out', html)
    assert "errornote" not in html


def test_the_page_costs_a_fixed_number_of_queries(admin):
    def count(customer):
        with CaptureQueriesContext(connection) as ctx:
            assert admin.get(page(customer)).status_code == 200
        return len(ctx.captured_queries)

    few = CustomerFactory()
    ConsentRecordFactory(customer=few)
    many = CustomerFactory()
    for _ in range(5):
        ConsentRecordFactory(customer=many, at=timezone.now() - dt.timedelta(days=3))
        queue_deletions(object_type="orders", ids=[OrderFactory(customer=many).pk], reason="left_feed")
    count(few)  # warm caches (content types)
    assert count(many) == count(few) <= 9


def test_every_object_has_a_readable_name(fake_clerk):
    call_command("seed_demo", products=5, customers=10, orders=20, stdout=open("/dev/null", "w"))
    deliver_pending()
    seen = 0
    for model in apps.get_models():
        if model._meta.app_label not in {"shop", "gdpr", "clerk", "feeds"}:
            continue
        obj = model._base_manager.first()
        if obj is not None:
            seen += 1
            assert " object (" not in str(obj), (model, str(obj))
    assert seen >= 10
    with translation.override("it"):
        assert str(Order.objects.first()).startswith("Ordine ")
        assert "cancellazione dei dati" in str(Erasure.objects.first())


def test_delivered_rows_show_no_next_attempt_and_the_success_status(admin, fake_clerk):
    queue_deletions(object_type="customers", ids=[7], reason="withdrawal")
    deliver_pending()
    row = ClerkDeletion.objects.get()
    assert row.status == Status.DELIVERED
    listing = admin.get(reverse("admin:clerk_clerkdeletion_changelist")).content.decode()
    cell = re.search(r'<td class="field-next_attempt">(.*?)</td>', listing).group(1)
    assert cell == "–"
    detail = admin.get(reverse("admin:clerk_clerkdeletion_change", args=[row.pk])).content.decode()
    # Clerk's own status of the "ok" reply, as recorded by the delivery.
    assert re.search(r'field-status_code">\s*200\s*<', detail) or re.search(
        r'<td class="field-status_code">\s*<p>200</p>', detail
    )
    assert "Capped: then the row fails." not in detail and "refusals in a row the row fails" in detail


def test_site_header_and_no_view_site_link(admin):
    html = admin.get(reverse("admin:index")).content.decode()
    assert "clerkfeeds" in html and "Django administration" not in html
    assert "View site" not in html


def test_the_audit_trail_lists_and_filters_every_action(admin, boss, fake_clerk):
    other = get_user_model().objects.create_superuser("other", "other@shop.example", "pw")
    anna, bruno = CustomerFactory(), CustomerFactory()
    admin.post(CHANGELIST, {"action": "record_withdrawal", "_selected_action": [anna.pk, bruno.pk], **withdrawal()})
    admin.post(CHANGELIST, {"action": "export_consent_csv", "_selected_action": [anna.pk]})
    admin.post(CHANGELIST, {"action": "erase_selected", "_selected_action": [bruno.pk], "confirm": "1"})
    failed = ClerkDeletion.objects.filter(object_id=anna.pk)
    failed.update(status=Status.FAILED)
    client = HTTPSClient()
    client.force_login(other)
    client.post(
        reverse("admin:clerk_clerkdeletion_changelist"), {"action": "retry", "_selected_action": [failed[0].pk]}
    )
    entries = {(e.user.username, *audit_details(e)) for e in LogEntry.objects.all()}
    assert entries == {
        ("boss", "consent_withdrawal", 2),
        ("boss", "consent_export", 1),
        ("boss", "erasure", 1),
        ("other", "outbox_retry", 1),
    }
    trail = reverse("admin:admin_logentry_changelist")
    by_other = admin.get(f"{trail}?user__id__exact={other.pk}")
    assert [audit_details(e)[0] for e in by_other.context["cl"].result_list] == ["outbox_retry"]
    erasures = admin.get(f"{trail}?audit=erasure")
    assert [audit_details(e) for e in erasures.context["cl"].result_list] == [("erasure", 1)]
    html = admin.get(trail).content.decode()
    assert "consent withdrawal recorded" in html and "Clerk deletions retried" in html
    assert "No fields changed" not in html


def test_the_redacted_marker_is_shown_translated(admin):
    customer = CustomerFactory()
    ConsentRecordFactory(customer=customer, evidence="Signed form")
    erase_person(customer_id=customer.pk, requested_by=None, reference="T-1")
    html = admin.get(page(customer), headers={"accept-language": "it"}).content.decode()
    assert "[oscurato: diritto all&#x27;oblio]" in html and "redacted: right to erasure" not in html


def test_the_wrong_italian_strings_are_gone(admin):
    customer = CustomerFactory()
    order = OrderFactory(customer=customer)
    queue_deletions(object_type="orders", ids=[order.pk], reason="withdrawal")
    italian = {"accept-language": "it"}
    customers = admin.get(CHANGELIST, headers=italian).content.decode()
    assert "Per presenza nel feed di Clerk" in customers and "Per nel feed" not in customers
    # Erasure has its own term, never Django's bare "Cancella" (delete).
    erase = re.search(r'<option value="erase_selected">([^<]*)</option>', customers).group(1)
    assert "oblio" in erase and not erase.startswith("Cancella ")
    outbox = admin.get(reverse("admin:clerk_clerkdeletion_changelist"), headers=italian).content.decode()
    assert "per visualizzarlo" not in outbox and f"elimina ordine {order.pk}" in outbox
    order_page = admin.get(reverse("admin:shop_order_change", args=[order.pk]), headers=italian).content.decode()
    assert "Aggiungi un altro" not in order_page and "Aggiungi: Riga d" in order_page
    assert f"Ordine {order.pk}" in order_page
    detail = admin.get(
        reverse("admin:clerk_clerkdeletion_change", args=[ClerkDeletion.objects.get().pk]), headers=italian
    ).content.decode()
    assert "Limitato: oltre" not in detail and "rifiuti di fila la riga fallisce" in detail


def test_the_csv_header_speaks_the_admins_language(admin):
    customer = CustomerFactory()
    ConsentRecordFactory(customer=customer)
    response = admin.post(
        CHANGELIST,
        {"action": "export_consent_csv", "_selected_action": [customer.pk]},
        headers={"accept-language": "it"},
    )
    first = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[0]
    assert first.startswith("id cliente,nome del cliente,email del cliente,finalità,stato")


def test_a_push_of_the_person_links_to_its_own_page(admin, settings):
    settings.CLERK_PUSH = "all"  # customers and orders are pushed too, under the policy
    anna = CustomerFactory(name="Anna")
    anna.save()  # an admin edit: a push of this customer is queued
    push = ClerkDeletion.objects.get(object_type="customers", object_id=anna.pk)
    assert push.action == "push"
    html = admin.get(page(anna)).content.decode()
    target = reverse("admin:clerk_clerkpush_change", args=[push.pk])
    assert f'href="{target}"' in html and f"push customer {anna.pk}" in html
    assert admin.get(target).status_code == 200
