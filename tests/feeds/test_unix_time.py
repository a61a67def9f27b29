"""Products' `created_at` is computed by the database; it must equal the Python conversion."""

import datetime as dt

import orjson
import pytest

from feeds.base import unix_time
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_database_unix_time_rounds_down_like_python(feed_client):
    moments = [
        dt.datetime(2020, 1, 1, 0, 0, 0, 999_999, tzinfo=dt.UTC),
        dt.datetime(2008, 1, 1, 12, 30, 15, tzinfo=dt.UTC),
        dt.datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=dt.UTC),
    ]
    for moment in moments:
        ProductFactory(created_at=moment)
    body = b"".join(feed_client.get("/feed/products.json").streaming_content)
    served = [obj["created_at"] for obj in orjson.loads(body)]
    assert served == [unix_time(m) for m in moments] == [1577836800, 1199190615, 2147483648]


def test_database_unix_time_of_orders_rounds_down_like_python(feed_client):
    from django.utils import timezone

    from tests.factories import OrderFactory

    # Recent (inside the GDPR window), on and just before a second's end.
    base = timezone.now().replace(microsecond=0) - dt.timedelta(days=3)
    moments = [base, base + dt.timedelta(microseconds=999_999), base + dt.timedelta(seconds=1, microseconds=1)]
    for moment in moments:
        OrderFactory(placed_at=moment)
    body = b"".join(feed_client.get("/feed/orders.json").streaming_content)
    served = [obj["time"] for obj in orjson.loads(body)]
    assert served == [unix_time(m) for m in moments]
    assert served[1] == served[0] and served[2] == served[0] + 1
