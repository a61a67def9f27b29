"""A shop admin records a withdrawal in a real browser (headless Chromium) and sees its effect."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from clerk.models import ClerkDeletion
from gdpr.models import ConsentRecord
from tests.browser import chromium
from tests.factories import CustomerFactory, OrderFactory


@pytest.mark.browser
# The live server speaks plain HTTP: no HTTPS redirect, no secure-only cookies in this test.
@override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)
class AdminConsentWorkflowInBrowser(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile = tempfile.mkdtemp(prefix="gdpr-chromium-")
        cls.browser = chromium(profile=cls.profile, width=1400, height=1000, extra_flags=["--lang=en-US"])

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        shutil.rmtree(cls.profile, ignore_errors=True)
        super().tearDownClass()

    def find(self, css):
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def in_feed_icon(self, customer):
        row = self.find(f'input[name="_selected_action"][value="{customer.pk}"]').find_element(
            By.XPATH, "./ancestor::tr"
        )
        return row.find_element(By.CSS_SELECTOR, "td.field-in_clerk_feed img").get_attribute("alt")

    def test_admin_records_a_withdrawal_and_the_customer_leaves_the_feed(self):
        get_user_model().objects.create_superuser("shopadmin", "admin@shop.example", "s3cret-pass")
        anna = CustomerFactory(name="Anna Bianchi", email="anna@example.com")
        OrderFactory(customer=anna)
        bruno = CustomerFactory(name="Bruno Verdi", email="bruno@example.com")
        CustomerFactory(name="Carla Neri", email="carla@example.com", terms_accepted_at=None)

        # Log in.
        self.browser.get(f"{self.live_server_url}/admin/login/?next=/admin/shop/customer/")
        self.find("#id_username").send_keys("shopadmin")
        self.find("#id_password").send_keys("s3cret-pass")
        self.find('input[type="submit"]').click()
        WebDriverWait(self.browser, 10).until(EC.url_contains("/admin/shop/customer/"))

        # Filter: only customers in the Clerk feed.
        self.find('#changelist-filter a[href="?in_feed=yes"]').click()
        WebDriverWait(self.browser, 10).until(EC.url_contains("in_feed=yes"))
        names = {e.text for e in self.browser.find_elements(By.CSS_SELECTOR, "td.field-name a")}
        self.assertEqual(names, {"Anna Bianchi", "Bruno Verdi"})
        self.assertEqual(self.in_feed_icon(anna), "True")

        # Select Anna, choose the withdrawal action, go.
        self.find(f'input[name="_selected_action"][value="{anna.pk}"]').click()
        Select(self.find('select[name="action"]')).select_by_value("record_withdrawal")
        self.find('button[name="index"]').click()

        # The intermediate form: purpose and evidence.
        WebDriverWait(self.browser, 10).until(EC.title_contains("Record a consent withdrawal"))
        Select(self.find("#id_purpose")).select_by_value("third_party_sharing")
        self.find("#id_evidence").send_keys("Email of 2 May asking to stop sharing, ticket 4711")
        self.find('input[name="apply"]').click()

        # Back on the list: the success message, and Anna is no longer in the feed.
        WebDriverWait(self.browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))
        self.assertIn("Recorded a withdrawal for 1 customer.", self.find("ul.messagelist").text)
        self.browser.get(f"{self.live_server_url}/admin/shop/customer/?q=example.com")
        self.assertEqual(self.in_feed_icon(anna), "False")
        self.assertEqual(self.in_feed_icon(bruno), "True")
        row = self.find(f'input[name="_selected_action"][value="{anna.pk}"]').find_element(By.XPATH, "./ancestor::tr")
        self.assertIn("objection", row.find_element(By.CSS_SELECTOR, "td.field-eligibility").text)

        record = ConsentRecord.objects.get(customer=anna)
        self.assertFalse(record.granted)
        self.assertEqual(record.recorded_by.username, "shopadmin")
        self.assertIn("ticket 4711", record.evidence)
        self.assertTrue(ClerkDeletion.objects.filter(object_type="customers", object_id=anna.pk).exists())
