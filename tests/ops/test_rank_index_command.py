"""`manage.py rank_index` and clerk_check's rank_index check: drift in the counts behind exact
cold seeks is found, named and repaired (PostgreSQL; on SQLite the index is not used)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from clerk.health import Level, Options
from feeds import rank_index
from feeds.health_checks import check_rank_index
from shop.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the rank index is kept by PostgreSQL triggers"
)


def rank_index_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("rank_index", *args, stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, out.getvalue()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="checks the SQLite answer")
def test_on_sqlite_the_index_is_not_used_and_says_so():
    ProductFactory()
    status, output = rank_index_command()
    assert status == 0
    assert "not used on this database" in output
    result = check_rank_index(Options())
    assert (result.level, result.message) == (Level.OK, "not used on this database: cold seeks count keys")


@postgres_only
def test_matching_counts_exit_0():
    ProductFactory.create_batch(3)
    status, output = rank_index_command()
    assert status == 0
    assert "shop_product: counts match the rows" in output
    assert check_rank_index(Options()).level == Level.OK


@postgres_only
def test_rows_written_behind_the_triggers_back_are_drift_then_rebuilt():
    ProductFactory(id=5)
    ProductFactory(id=9000)
    # Writes made with the triggers off (as a restore with --disable-triggers): a new row in
    # bucket 0 and an id moved from bucket 2 into it; bucket 0's count is then too low.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending: ALTER may run
        cursor.execute("ALTER TABLE shop_product DISABLE TRIGGER USER")
        Product.objects.filter(id=9000).update(id=100)  # the id trigger is off too
        ProductFactory.build(id=7).save_base(raw=True)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE shop_product ENABLE TRIGGER USER")
    drift = rank_index.count_drift(Product)
    assert [(d.bucket, d.counted, d.actual) for d in drift] == [(0, 1, 3), (2, 1, 0)]

    status, output = rank_index_command()
    assert status == 1
    assert "shop_product: 2 bucket(s) drifted (bucket 0: 1 counted, 3 rows, bucket 2: 1 counted, 0 rows)" in output
    result = check_rank_index(Options())
    assert result.level == Level.FAILURE
    assert result.message == "rank index out of step with the catalogue: run manage.py rank_index --rebuild"

    status, output = rank_index_command("--rebuild")
    assert status == 0
    assert "shop_product: counts match the rows (recounted)" in output
    assert rank_index.count_drift(Product) == []
    assert rank_index.key_at_position(Product, 2).key == 100


@postgres_only
def test_disabled_triggers_are_a_failure_and_cold_seeks_fall_back():
    ProductFactory.create_batch(2)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE shop_product DISABLE TRIGGER feeds_rank_insert")
    assert rank_index.armed(Product) is False
    assert not rank_index.key_at_position(Product, 0).available
    status, output = rank_index_command()
    assert status == 1
    assert "shop_product: counting triggers missing or disabled" in output
    assert check_rank_index(Options()).level == Level.FAILURE
