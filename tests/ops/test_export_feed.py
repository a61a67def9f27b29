"""`manage.py export_feed`: the HTTP feed's bytes in a file, atomically, or nothing at all."""

from __future__ import annotations

import gzip
import io
import os
import stat

import pytest
from django.core.management import CommandError, call_command

from feeds import encoding, pagination
from feeds.declarations import ProductFeed
from feeds.params import FeedParams
from feeds.static_export import export_feed
from tests.factories import CategoryFactory, CustomerFactory, OrderFactory, PageFactory, ProductFactory

pytestmark = pytest.mark.django_db

TYPES = ["products", "categories", "orders", "customers", "pages"]


@pytest.fixture
def shop():
    parent = CategoryFactory()
    child = CategoryFactory(parent=parent)
    products = ProductFactory.create_batch(5, categories=[child])
    ProductFactory(attributes={"color": "red", "stock": 3})
    PageFactory.create_batch(2)
    customers = CustomerFactory.create_batch(2)
    OrderFactory(customer=customers[0], lines=[(products[0].id, 2, "9.50")])
    OrderFactory(customer=None, terms_accepted_at=customers[0].registered_at)
    return products


def http_feed(feed_client, path: str) -> bytes:
    response = feed_client.get(path)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_feed", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
@pytest.mark.parametrize("name", TYPES)
def test_the_file_holds_exactly_the_http_feed(shop, feed_client, tmp_path, name, fmt):
    target = tmp_path / f"{name}.{fmt}"

    summary = export(name, "--out", str(target), "--format", fmt)

    assert target.read_bytes() == http_feed(feed_client, f"/feed/{name}.{fmt}")
    assert summary.startswith(f"{name}: ")


def test_the_single_feed_file_holds_exactly_the_http_single_feed(shop, feed_client, tmp_path):
    target = tmp_path / "all.json"

    export("all", "--out", str(target))

    assert target.read_bytes() == http_feed(feed_client, "/feed/all.json")


def test_language_and_modified_after_mean_what_the_feed_parameters_mean(shop, feed_client, tmp_path, settings):
    settings.CLERK_LANGUAGES = ["italian", "english"]
    target = tmp_path / "products.json"

    export("products", "--out", str(target), "--language", "english", "--modified-after", "1")

    assert target.read_bytes() == http_feed(feed_client, "/feed/products.json?language=english&modified_after=1")


def test_a_gz_name_compresses_and_round_trips(shop, feed_client, tmp_path):
    target = tmp_path / "products.json.gz"

    export("products", "--out", str(target))

    raw = target.read_bytes()
    assert gzip.decompress(raw) == http_feed(feed_client, "/feed/products.json")
    assert b"products.json\x00" in raw[:64] and b".tmp" not in raw[:64]  # the header names the feed


def test_the_same_data_gives_the_same_compressed_bytes(shop, tmp_path):
    first, second = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    export("categories", "--out", str(first))
    export("categories", "--out", str(second))

    assert gzip.decompress(first.read_bytes()) == gzip.decompress(second.read_bytes())
    assert first.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # no timestamp in the header


def _fail_on_product(monkeypatch, product_id: int) -> None:
    """Make the products feed fail at `product_id`, after earlier rows were already written."""
    monkeypatch.setattr(encoding, "CHUNK_SIZE", 64)
    monkeypatch.setattr(pagination, "BATCH_SIZE", 2)
    shape = ProductFeed.to_object

    def failing(self, row):
        if row["id"] == product_id:
            raise RuntimeError("the database went away")
        return shape(self, row)

    monkeypatch.setattr(ProductFeed, "to_object", failing)


def test_a_failure_mid_export_leaves_the_previous_file_and_no_temporary_file(shop, tmp_path, monkeypatch):
    target = tmp_path / "products.json"
    target.write_bytes(b"yesterday's complete feed")
    _fail_on_product(monkeypatch, shop[4].id)
    written: list[int] = []

    with pytest.raises(RuntimeError, match="the database went away"):
        export_feed("products", out=target, params=FeedParams(), progress=lambda rows, size: written.append(size))

    assert written and written[-1] > 0  # the failure came after bytes had gone to disk
    assert target.read_bytes() == b"yesterday's complete feed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["products.json"]


def test_a_failed_export_command_says_nothing_was_written(shop, tmp_path, monkeypatch):
    target = tmp_path / "products.json.gz"
    _fail_on_product(monkeypatch, shop[4].id)

    with pytest.raises(CommandError, match="export failed, nothing written: RuntimeError"):
        export("products", "--out", str(target))

    assert list(tmp_path.iterdir()) == []


def test_a_disk_failure_at_fsync_leaves_nothing(shop, tmp_path, monkeypatch):
    target = tmp_path / "pages.json"

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CommandError, match="No space left on device"):
        export("pages", "--out", str(target))

    assert list(tmp_path.iterdir()) == []


def test_the_file_is_private_unless_a_mode_is_given(shop, tmp_path):
    private, public = tmp_path / "customers.json", tmp_path / "products.json"

    export("customers", "--out", str(private))
    export("products", "--out", str(public), "--mode", "644")

    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["all", "--format", "ndjson"], "The single feed 'all' is one JSON object"),
        (["products", "--language", "klingon"], "language"),
        (["products", "--modified-after", "-1"], "0 or more"),
    ],
)
def test_bad_arguments_write_nothing(shop, tmp_path, args, message):
    target = tmp_path / "feed.json"

    with pytest.raises(CommandError, match=message):
        export(*args, "--out", str(target))

    assert list(tmp_path.iterdir()) == []
