"""Every admin page of the demo shop, rendered in Italian, shows no English (apart from data).

The catalogues are compiled afresh (msgfmt) and must match the committed .mo files. Then the
demo shop is seeded, its outbox delivered to the fake Clerk, a feed walked and an audited action
run; every page a shop admin reaches is rendered with `Accept-Language: it`. Its visible text
(text nodes, titles, placeholders, button values) must hold no English word: a word of an English
msgid (ours and Django's admin) that no Italian translation uses and no stored data contains.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from clerk.delivery import deliver_pending
from gdpr.models import Purpose, Source
from shop.models import Customer, Product
from tests.conftest import HTTPSClient
from tests.italian import data_pattern, english_in, stored_texts, suspects

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_shop(fake_clerk, feed_client, settings):
    call_command("seed_demo", products=15, customers=12, orders=40, stdout=open("/dev/null", "w"))
    settings.CLERK_PUSH = "catalogue"  # the default: an admin edit queues a push
    for product in Product.objects.order_by("pk")[:2]:
        product.save()
    deliver_pending()  # delivered rows and their attempts, at the fake Clerk
    Product.objects.order_by("pk").first().save()  # and one push still pending
    assert feed_client.get("/feed/products.json").status_code == 200  # an import run
    return get_user_model().objects.create_superuser("boss", "boss@shop.example", "pw")


def admin_pages(client) -> list[tuple[str, str]]:
    """(description, url) of every page of the admin's registered models and apps."""
    pages = [("index", reverse("admin:index")), ("password change", reverse("admin:password_change"))]
    app_labels = sorted({model._meta.app_label for model in admin.site._registry})
    pages += [(f"app {label}", reverse("admin:app_list", args=[label])) for label in app_labels]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((f"{info} list", reverse("admin:{}_{}_changelist".format(*info))))
        pages.append((f"{info} search", reverse("admin:{}_{}_changelist".format(*info)) + "?q=zzz"))
        if model_admin.has_add_permission(_Request()):
            pages.append((f"{info} add", reverse("admin:{}_{}_add".format(*info))))
        shown = model_admin.get_queryset(_Request())  # a proxy's page shows only its own rows
        objects = list(shown.order_by("pk").values_list("pk", flat=True)[:1])
        objects += list(shown.order_by("-pk").values_list("pk", flat=True)[:1])
        for pk in dict.fromkeys(objects):
            pages.append((f"{info} {pk}", reverse("admin:{}_{}_change".format(*info), args=[pk])))
            pages.append((f"{info} {pk} history", reverse("admin:{}_{}_history".format(*info), args=[pk])))
    return pages


class _Request:
    """Enough of a request for a superuser's permission checks."""

    class user:
        is_active = is_superuser = is_staff = True

        @staticmethod
        def has_perm(perm, obj=None):
            return True


def test_every_admin_page_of_the_demo_shop_is_in_italian(demo_shop, tmp_path):
    texts = stored_texts() | {demo_shop.username}  # before erasure redacts some of it
    client = HTTPSClient(headers={"accept-language": "it"})
    anonymous = client.get(reverse("admin:login"))
    client.force_login(demo_shop)
    pages = [("login", anonymous)]
    every = admin_pages(client)
    assert any("/clerkpush/" in url and url.endswith("/change/") for _, url in every)  # a push's page too
    for name, url in every:
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        pages.append((name, response))

    # The consent actions' pages: the forms, every error at once, the messages after them.
    live = Customer.objects.filter(erased_at__isnull=True).order_by("pk")
    erased = Customer.objects.filter(erased_at__isnull=False).first()
    changelist = reverse("admin:shop_customer_changelist")
    selection = {"_selected_action": [live[0].pk, erased.pk]}
    for action in ("record_grant", "record_withdrawal", "erase_selected"):
        pages.append((action, client.post(changelist, {"action": action, **selection})))
    errors = {"apply": "1", "purpose": Purpose.THIRD_PARTY_SHARING, "at_0": "2999-01-01", "at_1": "00:00"}
    pages.append(("form errors", client.post(changelist, {"action": "record_withdrawal", **selection, **errors})))
    done = {"apply": "1", "purpose": Purpose.THIRD_PARTY_SHARING, "at_0": "2024-01-01", "at_1": "00:00"}
    done |= {"source": Source.ADMIN, "evidence": "ticket 12"}
    pages.append(
        ("withdrawal done", client.post(changelist, {"action": "record_withdrawal", **selection, **done}, follow=True))
    )
    pages.append(
        (
            "erasure done",
            client.post(
                changelist, {"action": "erase_selected", "_selected_action": [live[1].pk], "confirm": "1"}, follow=True
            ),
        )
    )
    pages.append(("after erasure", client.get(changelist)))
    pages.append(("erased customer", client.get(reverse("admin:shop_customer_change", args=[live[1].pk]))))
    pages.append(("audit trail", client.get(reverse("admin:admin_logentry_changelist"))))

    texts |= stored_texts()
    data, english = data_pattern(texts), suspects(tmp_path)
    problems = {}
    for name, response in pages:
        assert response.status_code == 200, name
        found = english_in(response.content.decode(), english, data, texts)
        if found:
            problems[name] = found
    assert not problems, "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items())
