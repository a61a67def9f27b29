"""The admin lists the importer's walks, read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feeds.models import ImportRun
from feeds.signals import page_served

pytestmark = pytest.mark.django_db


@pytest.fixture
def run() -> ImportRun:
    page_served.send_robust(
        sender=None,
        feed="categories",
        fmt="json",
        offset=0,
        limit=None,
        rows=1234,
        bytes=56789,
        duration=0.5,
        outcome="ok",
        client="client-abc",
        params={},
    )
    return ImportRun.objects.get()


@pytest.fixture
def staff(admin_client):
    """A superuser; every request is made over HTTPS (the admin redirects plain HTTP)."""
    return admin_client


def test_the_changelist_shows_each_walk(staff, run):
    response = staff.get(reverse("admin:feeds_importrun_changelist"), secure=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "categories" in page and "1,234" in page and "55.5\xa0KB" in page


def test_runs_cannot_be_added_changed_or_deleted_by_hand(staff, run):
    add = staff.get(reverse("admin:feeds_importrun_add"), secure=True)
    delete = staff.post(reverse("admin:feeds_importrun_delete", args=[run.pk]), {"post": "yes"}, secure=True)
    change = staff.post(reverse("admin:feeds_importrun_change", args=[run.pk]), {"feed": "orders"}, secure=True)

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code == 403
    run.refresh_from_db()
    assert run.feed == "categories"
