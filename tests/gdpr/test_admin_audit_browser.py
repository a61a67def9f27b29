"""A data-protection officer's walk through the admin, in headless Chromium at 1366×768, in English
and in Italian: log in, find a customer by email, read why they are in the feed, record a
withdrawal from their page, see the queued deletion, export the evidence, erase the person.

Each step's screenshot goes to test-output/admin-walk/<language>/ (git-ignored). Each list's
key columns must lie within the viewport with the menu open (no horizontal scrolling); an Italian
page must hold no English outside data (`tests.italian`); the feeds must show the outcome.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from clerk.delivery import deliver_pending
from clerk.models import ClerkDeletion, Status
from gdpr.models import ConsentRecord, Erasure
from shop.models import Customer
from tests.browser import chromium
from tests.conftest import TEST_TOKEN, HTTPSClient
from tests.factories import CustomerFactory, OrderFactory
from tests.italian import data_pattern, english_in, stored_texts, suspects

WIDTH, HEIGHT = 1366, 768
OUTPUT = Path(settings.BASE_DIR) / "test-output" / "admin-walk"
TEXTS = {
    "en": {
        "why": "contract, recent data",
        "withdrawn": "Recorded a withdrawal for 1 customer. Queued for deletion at Clerk: 1 customer and 2 orders.",
        "erased": "Erased 1 person; their deletion at Clerk is queued.",
        "pending": "pending",
        "evidence": "Phone call of 5 December, ticket 4711",
    },
    "it": {
        "why": "contratto, dati recenti",
        "withdrawn": "Registrata una revoca per 1 cliente. In coda per l'eliminazione presso Clerk: 1 cliente e 2 ordini.",
        "erased": "Dati di 1 persona cancellati (diritto all'oblio); la sua eliminazione presso Clerk è in coda.",
        "pending": "in attesa",
        "evidence": "Telefonata del 5 dicembre, ticket 4711",
    },
}


def feed_ids(feed: str) -> set[int]:
    client = HTTPSClient(headers={"X-Clerk-Authorization": f"Bearer {TEST_TOKEN}"})
    response = client.get(f"/feed/{feed}.json")
    assert response.status_code == 200
    return {obj["id"] for obj in orjson.loads(b"".join(response.streaming_content))}


@pytest.mark.browser
@override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)
class AdminAuditWalkInBrowser(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile = tempfile.mkdtemp(prefix="gdpr-chromium-")
        cls.downloads = tempfile.mkdtemp(prefix="gdpr-downloads-")
        cls.browser = chromium(
            profile=cls.profile, width=WIDTH, height=HEIGHT, extra_flags=["--hide-scrollbars"], downloads=cls.downloads
        )
        cls.browser.set_window_size(WIDTH, HEIGHT)

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        shutil.rmtree(cls.profile, ignore_errors=True)
        shutil.rmtree(cls.downloads, ignore_errors=True)
        super().tearDownClass()

    # --- helpers -------------------------------------------------------------------------------
    def find(self, css):
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def wait_for(self, css):
        return WebDriverWait(self.browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def step(self, name: str) -> None:
        """Screenshot the step; on an Italian page, no English outside data."""
        self.shots.mkdir(parents=True, exist_ok=True)
        self.browser.save_screenshot(str(self.shots / f"{len(self.taken) + 1:02d}-{name}.png"))
        self.taken.append(name)
        if self.language == "it":
            self.texts |= stored_texts()  # what the walk has stored so far is data too
            found = english_in(self.browser.page_source, self.english, data_pattern(self.texts), self.texts)
            self.assertEqual(found, [], f"English on the Italian page of step {name}")

    def assert_fits(self, *columns: str) -> None:
        """The menu is open, the page does not scroll sideways, every key column is in view."""
        sidebar = self.find("#nav-sidebar")
        self.assertTrue(sidebar.is_displayed() and sidebar.size["width"] > 100, "the menu must be open")
        inner, scroll, visible, table = self.browser.execute_script(
            "const results = document.querySelector('#changelist .results');"
            "return [window.innerWidth, document.documentElement.scrollWidth,"
            " results.getBoundingClientRect().right, results.scrollWidth - results.clientWidth]"
        )
        self.assertLessEqual(scroll, inner, "the page scrolls sideways")
        self.assertLessEqual(table, 0, "the list scrolls sideways")
        for column in columns:
            header = self.find(f"#result_list thead th.column-{column}")
            box = self.browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", header)
            right = min(inner, visible)
            self.assertTrue(0 <= box["left"] and box["right"] <= right, f"column {column} is out of view: {box}")
            self.assertTrue(header.is_displayed(), column)

    def message(self) -> str:
        return self.wait_for("ul.messagelist").text

    # --- the walk ------------------------------------------------------------------------------
    def walk(self, language: str) -> None:
        self.language, self.taken = language, []
        self.shots = OUTPUT / language
        shutil.rmtree(self.shots, ignore_errors=True)
        text = TEXTS[language]
        call_command("seed_demo", products=10, customers=20, orders=40, stdout=open("/dev/null", "w"))
        get_user_model().objects.create_superuser("dpo", "dpo@shop.example", "s3cret-pass")
        person = CustomerFactory(id=7001, name="Niccolò Ferri", email="niccolo.ferri@example.com")
        orders = [OrderFactory(id=97001, customer=person), OrderFactory(id=97002, customer=person)]
        self.assertIn(person.pk, feed_ids("customers"))
        self.assertTrue({o.pk for o in orders} <= feed_ids("orders"))
        if language == "it":
            self.texts = stored_texts() | {"dpo"}
            self.english = suspects(Path(tempfile.mkdtemp(prefix="mo-")))

        # 1. Log in.
        self.browser.get(f"{self.live_server_url}/admin/login/")
        self.browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
        self.browser.get(f"{self.live_server_url}/admin/login/?next=/admin/shop/customer/")
        self.step("login")
        self.find("#id_username").send_keys("dpo")
        self.find("#id_password").send_keys("s3cret-pass")
        self.find('input[type="submit"]').click()
        self.wait_for("#result_list")

        # 2. Find the customer by email.
        self.find("#searchbar").send_keys("niccolo.ferri@example.com")
        self.find('#changelist-search input[type="submit"]').click()
        WebDriverWait(self.browser, 10).until(EC.url_contains("q=niccolo"))
        rows = self.browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        self.assertEqual(len(rows), 1)
        self.step("customer-found-by-email")
        self.assert_fits("name", "email", "sharing_state", "in_clerk_feed", "eligibility", "registered", "updated")
        self.browser.get(f"{self.live_server_url}/admin/shop/customer/")
        self.step("customer-list")
        self.assert_fits("name", "email", "sharing_state", "in_clerk_feed", "eligibility", "registered", "updated")

        # 3. Why they are in the feed: their page.
        self.browser.get(f"{self.live_server_url}/admin/shop/customer/{person.pk}/change/")
        self.assertIn(text["why"], self.find(".field-legal_ground").text)
        self.assertEqual(self.find(".field-in_clerk_feed img").get_attribute("alt"), "True")
        self.step("why-in-the-feed")

        # 4. Record a withdrawal from the page.
        self.find("button.page-action-record_withdrawal").click()
        self.wait_for("#id_evidence")
        Select(self.find("#id_purpose")).select_by_value("third_party_sharing")
        self.find("#id_evidence").send_keys(text["evidence"])
        self.step("withdrawal-form")
        self.find('input[name="apply"]').click()
        self.assertIn(text["withdrawn"], self.message())
        self.assertIn(f"/admin/shop/customer/{person.pk}/change/", self.browser.current_url)
        self.assertEqual(self.find(".field-in_clerk_feed img").get_attribute("alt"), "False")
        self.step("withdrawal-recorded")

        # 5. The queued deletion: on the page, then in the outbox.
        outbox = self.find(".field-clerk_outbox")
        self.browser.execute_script("arguments[0].scrollIntoView()", outbox)
        self.assertEqual(len(outbox.find_elements(By.CSS_SELECTOR, "tr.outbox-row")), 3)
        self.assertIn(text["pending"], outbox.text)
        self.step("queued-deletion-on-the-page")
        self.browser.get(f"{self.live_server_url}/admin/clerk/clerkdeletion/?status=pending")
        self.step("queued-deletion-in-the-outbox")
        self.assert_fits("what", "reason", "status_badge", "attempts", "queued", "next_attempt", "delivered")

        # 6. Export the evidence (CSV, from the page), and the ledger's list.
        self.browser.get(f"{self.live_server_url}/admin/shop/customer/{person.pk}/change/")
        self.find("button.page-action-export_consent_csv").click()
        csv = self.downloaded()
        self.assertTrue(csv.startswith("\ufeff"), "the CSV starts with a byte-order mark")
        self.assertIn("Niccolò Ferri", csv)
        self.assertIn("ticket 4711", csv)
        self.browser.get(f"{self.live_server_url}/admin/gdpr/consentrecord/?q=niccolo.ferri%40example.com")
        self.step("evidence-exported")
        self.assert_fits("customer", "purpose", "granted", "when", "source", "short_evidence", "recorded_by")

        # 7. Erase the person.
        self.browser.get(f"{self.live_server_url}/admin/shop/customer/{person.pk}/change/")
        self.find("button.page-action-erase_selected").click()
        self.wait_for("#id_reference").send_keys("DPO-2026-17")
        self.step("erasure-confirmation")
        self.find('input[name="confirm"]').click()
        self.assertIn(text["erased"], self.message())
        self.step("erased")
        self.browser.get(f"{self.live_server_url}/admin/gdpr/erasure/")
        self.step("erasures")
        self.assert_fits("when", "requested_by", "short_reference", "customers", "deletions_queued")
        self.browser.get(f"{self.live_server_url}/admin/admin/logentry/")
        self.step("audit-trail")
        self.assert_fits("action_time", "user", "what", "people")

        # The outcome: out of the feeds, deletions queued, the ledger redacted, the trail complete.
        person.refresh_from_db()
        self.assertIsNotNone(person.erased_at)
        self.assertEqual(person.email, "")
        self.assertNotIn(person.pk, feed_ids("customers"))
        self.assertFalse({o.pk for o in orders} & feed_ids("orders"))
        queued = ClerkDeletion.objects.filter(status=Status.PENDING)
        self.assertTrue(queued.filter(object_type="customers", object_id=person.pk).exists())
        self.assertEqual(queued.filter(object_type="orders", object_id__in=[o.pk for o in orders]).count(), 2)
        self.assertTrue(queued.filter(action="forget", object_id=person.pk).exists())
        self.assertTrue(all(r.redacted_at for r in ConsentRecord.objects.filter(customer=person)))
        self.assertEqual(Erasure.objects.get(reference="DPO-2026-17").customer_ids, [person.pk])
        self.assertFalse(Customer.objects.filter(email="niccolo.ferri@example.com").exists())
        self.assertEqual(len(self.taken), 13)

    def downloaded(self) -> str:
        for _ in range(100):
            files = [p for p in Path(self.downloads).glob("consent-evidence-*.csv")]
            if files:
                content = files[0].read_text(encoding="utf-8")
                files[0].unlink()
                return content
            time.sleep(0.1)
        self.fail("the CSV was not downloaded")

    def test_every_list_fits_with_the_menu_open(self):
        """Every model's list, in both languages, without sideways scrolling at 1366×768."""
        call_command("seed_demo", products=10, customers=20, orders=40, stdout=open("/dev/null", "w"))
        deliver_pending()
        feed_ids("products")  # an import run
        get_user_model().objects.create_superuser("dpo", "dpo@shop.example", "s3cret-pass")
        self.browser.get(f"{self.live_server_url}/admin/login/")
        self.find("#id_username").send_keys("dpo")
        self.find("#id_password").send_keys("s3cret-pass")
        self.find('input[type="submit"]').click()
        self.wait_for("#content-main")
        too_wide, shots = [], OUTPUT / "lists"  # a screenshot of each list that does not fit
        shutil.rmtree(shots, ignore_errors=True)
        for language in ("en", "it"):
            self.browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
            for model in admin.site._registry:
                url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
                self.browser.get(f"{self.live_server_url}{url}")
                overflow = self.browser.execute_script(
                    "const r = document.querySelector('#changelist .results');"
                    "return r ? r.scrollWidth - r.clientWidth : 0"
                )
                if overflow > 0:
                    shots.mkdir(parents=True, exist_ok=True)
                    self.browser.save_screenshot(str(shots / f"{language}-{model._meta.model_name}.png"))
                    too_wide.append((language, model._meta.label, overflow))
        self.assertEqual(too_wide, [])

    def test_the_walk_in_english(self):
        self.walk("en")

    def test_the_walk_in_italian(self):
        self.walk("it")
