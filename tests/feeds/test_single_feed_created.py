"""config.created moves when a deletion is queued, even though no row is left to read."""

import datetime as dt

import orjson
import pytest
from django.utils import timezone

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_config_created_moves_when_a_product_is_deleted(feed_client):
    old = timezone.now() - dt.timedelta(days=3)
    ProductFactory(updated_at=old)
    gone = ProductFactory(updated_at=old)
    before = orjson.loads(b"".join(feed_client.get("/feed/all.json").streaming_content))["config"]["created"]
    assert before == int(old.timestamp())
    gone.delete()  # the GDPR outbox queues the deletion for Clerk
    after = orjson.loads(b"".join(feed_client.get("/feed/all.json").streaming_content))["config"]["created"]
    assert after > before
    assert after >= int(timezone.now().timestamp()) - 5
