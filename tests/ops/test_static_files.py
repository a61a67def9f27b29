"""whitenoise serves what `collectstatic` collected, compressed, with the default settings (a
plain host: no storage setting to remember)."""

from __future__ import annotations

from django.core.management import call_command
from django.test import override_settings

from tests.conftest import HTTPSClient

CSS = "/static/admin/css/base.css"


def test_collected_files_are_served_compressed_by_default(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", "--noinput", verbosity=0)
        assert (tmp_path / "admin/css/base.css.gz").exists()
        client = HTTPSClient()  # a new handler: whitenoise reads STATIC_ROOT when it starts
        response = client.get(CSS, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response["Content-Encoding"] == "gzip"


def test_nothing_is_served_before_collectstatic(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        response = HTTPSClient().get(CSS)
    assert response.status_code == 404
