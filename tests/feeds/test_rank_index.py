"""The rank index: the key at a position equals the plain OFFSET answer, whatever wrote the rows.

The truth everywhere is `ORDER BY id OFFSET position LIMIT 1` on the table itself, and the
bucket counts are checked against counts computed in Python from the ids (Python's `>>` on a
negative int floors, as PostgreSQL's does on a bigint).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from decimal import Decimal

import orjson
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feeds import rank_index
from feeds.base import UnixTime
from feeds.models import RankBucket
from feeds.rank_index import SHIFT, UNAVAILABLE, RankSeek, key_at_position, key_at_position_in
from feeds.registry import FEEDS
from shop.models import Category, Customer, Page, Product
from tests.shop.helpers import T0, import_cleanly, import_shop

pytestmark = pytest.mark.django_db

migration = importlib.import_module("feeds.migrations.0002_rank_buckets")

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the rank index is PostgreSQL-only (statement triggers with transition tables)",
)
CREATED = timezone.now() - dt.timedelta(days=1)


# --- helpers -------------------------------------------------------------------------------------
def truth(model, position: int) -> int | None:
    """The plain seek: the key at `position` by OFFSET, None past the end."""
    keys = list(model.objects.order_by("id").values_list("id", flat=True)[position : position + 1])
    return keys[0] if keys else None


def counted(model) -> dict[int, int]:
    return dict(RankBucket.objects.filter(table_name=model._meta.db_table).values_list("bucket", "row_count"))


def expected_counts(model) -> dict[int, int]:
    return dict(Counter(pk >> SHIFT for pk in model.objects.values_list("id", flat=True)))


def assert_exact(model, positions) -> None:
    assert counted(model) == expected_counts(model)
    for position in positions:
        assert key_at_position(model, position) == RankSeek(available=True, key=truth(model, position)), position


def product(pk: int, **fields) -> Product:
    return Product(
        id=pk,
        name=f"P{pk}",
        price=Decimal("1.00"),
        image="https://i.example/x.jpg",
        url=f"https://shop.example/p/{pk}",
        created_at=CREATED,
        **fields,
    )


def imported(pk: int, name: str = "") -> dict:
    """A product as the import file gives it."""
    return {
        "id": pk,
        "name": name or f"P{pk}",
        "description": "",
        "price": 1,
        "image": "https://i.example/x.jpg",
        "url": f"https://shop.example/p/{pk}",
        "categories": [],
        "created_at": T0,
    }


def raw(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- both backends -------------------------------------------------------------------------------
def test_the_migration_and_the_seek_agree_on_buckets_tables_and_triggers():
    assert migration.SHIFT == rank_index.SHIFT
    assert set(migration.TABLES) == rank_index.COUNTED_TABLES
    assert {Product._meta.db_table, Category._meta.db_table, Page._meta.db_table} == rank_index.COUNTED_TABLES
    assert migration.TRIGGERS == rank_index.TRIGGERS


def test_a_negative_position_is_refused():
    with pytest.raises(ValueError):
        key_at_position(Product, -1)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="checks the SQLite fallback")
def test_on_sqlite_the_index_is_unavailable_and_costs_no_query():
    Product.objects.bulk_create([product(1), product(2)])
    with CaptureQueriesContext(connection) as queries:
        assert key_at_position(Product, 0) == UNAVAILABLE
        assert key_at_position_in(Product.objects.all(), 1) == UNAVAILABLE
    assert len(queries) == 0
    assert not RankBucket.objects.exists()


def test_only_a_queryset_over_the_whole_table_qualifies():
    assert rank_index.covers_whole_table(Product.objects.all())
    assert rank_index.covers_whole_table(Product.objects.annotate(created_unix=UnixTime("created_at")))
    assert not rank_index.covers_whole_table(Product.objects.filter(index=True))
    assert not rank_index.covers_whole_table(Product.objects.filter(categories__id=1))
    assert not rank_index.covers_whole_table(Product.objects.distinct())
    assert not rank_index.covers_whole_table(Product.objects.all()[:10])
    assert not rank_index.covers_whole_table(Product.objects.select_related())
    assert key_at_position_in(Product.objects.filter(index=True), 0) == UNAVAILABLE


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_the_feeds_whole_selections_qualify_exactly_for_the_catalogue(name):
    feed = FEEDS[name]()
    whole = feed.selection()
    assert rank_index.covers_whole_table(whole) is feed.rows_leave_only_by_deletion  # GDPR feeds filter
    assert (whole.model._meta.db_table in rank_index.COUNTED_TABLES) is feed.rows_leave_only_by_deletion
    assert not rank_index.covers_whole_table(feed.selection(modified_since=timezone.now()))


# --- PostgreSQL ----------------------------------------------------------------------------------
def assert_extreme_keys_are_found_after_insert():
    Product.objects.bulk_create([product(2**63 - 1), product(-(2**63))])  # the extreme bigints
    assert key_at_position(Product, 0).key == -(2**63)
    assert key_at_position(Product, 1).key == 2**63 - 1
    assert key_at_position(Product, 2**70).past_end


@on_postgresql
def test_an_empty_table_is_past_the_end_and_extreme_keys_are_found():
    assert key_at_position(Product, 0) == RankSeek(available=True, key=None)
    assert key_at_position(Product, 0).past_end
    assert_extreme_keys_are_found_after_insert()


@on_postgresql
def test_one_query_per_seek():
    Product.objects.bulk_create([product(pk) for pk in range(0, 12_000, 4)])
    for position in (0, 1_500, 2_999, 3_000):
        with CaptureQueriesContext(connection) as queries:
            seek = key_at_position(Product, position)
        assert len(queries) == 1
        assert seek.key == truth(Product, position)


@on_postgresql
def test_a_table_without_triggers_is_unavailable():
    Customer.objects.create(id=1, name="", email="")
    assert key_at_position(Customer, 0) == UNAVAILABLE
    assert key_at_position_in(Customer.objects.all(), 0) == UNAVAILABLE


@on_postgresql
def test_a_disabled_trigger_makes_the_seek_unavailable():
    Product.objects.bulk_create([product(1)])
    raw("ALTER TABLE shop_product DISABLE TRIGGER feeds_rank_delete")
    assert key_at_position(Product, 0) == UNAVAILABLE
    raw("ALTER TABLE shop_product ENABLE ALWAYS TRIGGER feeds_rank_delete")
    assert key_at_position(Product, 0) == RankSeek(available=True, key=1)


@on_postgresql
def test_a_bucket_counted_higher_than_its_rows_is_detected(caplog):
    Product.objects.bulk_create([product(pk) for pk in (1, 2, 3, 5000)])
    RankBucket.objects.filter(table_name="shop_product", bucket=0).update(row_count=6)
    assert key_at_position(Product, 2) == RankSeek(available=True, key=3)
    assert key_at_position(Product, 4) == UNAVAILABLE  # counts say bucket 0, which has 3 rows
    assert "rank index inconsistent" in caplog.text


@on_postgresql
@pytest.mark.parametrize("model", [Product, Category, Page])
def test_each_catalogue_table_is_counted(model):
    ids = [-9000, -1, 0, 7, 4096, 2**40]
    for pk in ids:
        if model is Product:
            product(pk).save(force_insert=True)
        elif model is Category:
            Category.objects.create(id=pk, name="c", url="https://shop.example/c")
        else:
            Page.objects.create(id=pk, type="cms", url="https://shop.example/p", title="t", text="x")
    model.objects.filter(id=7).delete()
    assert_exact(model, range(len(ids) + 1))


@on_postgresql
def test_the_upsert_of_an_import_counts_new_rows_once_and_updates_not_at_all():
    first = b"".join(orjson.dumps(imported(pk)) + b"\n" for pk in range(10, 60))
    assert import_shop(first, "--type", "products", "--batch-size", "20").code == 0
    assert counted(Product) == {0: 50}
    # 30 of them changed, 20 unchanged, 25 new (5 of them in another bucket).
    again = [imported(pk, name="changed") for pk in range(10, 40)] + [imported(pk) for pk in range(40, 60)]
    again += [imported(pk) for pk in range(60, 80)] + [imported(pk) for pk in range(8192, 8197)]
    run = import_shop(b"".join(orjson.dumps(o) + b"\n" for o in again), "--type", "products", "--batch-size", "20")
    assert run.code == 0
    assert "products 25 created, 30 updated, 20 unchanged" in run.stdout
    assert counted(Product) == {0: 70, 2: 5}
    assert_exact(Product, [0, 49, 69, 70, 74, 75])


@on_postgresql
def test_counts_of_a_rolled_back_transaction_are_rolled_back_with_it():
    Product.objects.bulk_create([product(pk) for pk in range(1, 11)])
    before = counted(Product)
    with pytest.raises(RuntimeError), transaction.atomic():
        Product.objects.bulk_create([product(pk) for pk in range(100, 200)])
        Product.objects.filter(id__lte=5).delete()
        import_cleanly({"products": [imported(pk) for pk in range(9000, 9010)]})
        assert counted(Product) == {0: 105, 2: 10}  # seen inside the transaction
        raise RuntimeError("roll back")
    assert counted(Product) == before == {0: 10}
    assert_exact(Product, [0, 9, 10])


@on_postgresql
def test_a_changed_primary_key_moves_its_row_between_buckets():
    Product.objects.bulk_create([product(pk) for pk in (1, 2, 3)])
    raw("UPDATE shop_product SET id = -id WHERE id >= 2")  # to bucket -1
    raw("UPDATE shop_product SET id = 5 WHERE id = 1")  # same bucket: nothing moves
    raw("UPDATE shop_product SET name = 'renamed'")  # no key change: the per-row trigger stays quiet
    assert counted(Product) == {-1: 2, 0: 1}
    assert_exact(Product, [0, 1, 2, 3])


@on_postgresql
def test_truncate_resets_the_counts():
    Product.objects.bulk_create([product(pk) for pk in range(5)])
    Page.objects.create(id=1, type="cms", url="https://shop.example/p", title="t", text="x")
    raw("TRUNCATE shop_product CASCADE")
    assert counted(Product) == {}
    assert counted(Page) == {0: 1}
    assert key_at_position(Product, 0).past_end
    assert_extreme_keys_are_found_after_insert()


@on_postgresql
def test_rows_loaded_with_replica_role_are_counted():
    """`bench/seed_pg.py` loads with `session_replication_role = replica` (no FK triggers)."""
    with transaction.atomic():
        raw("SET LOCAL session_replication_role = replica")
        Product.objects.bulk_create([product(pk) for pk in range(1, 5)])
        raw("DELETE FROM shop_product WHERE id = 2")
    assert_exact(Product, [0, 2, 3])


@on_postgresql
def test_the_backfill_counts_rows_that_existed_before_the_triggers():
    def run(step):
        raw("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER TABLE refuses them
        with connection.schema_editor() as editor:
            step(None, editor)

    run(migration.uninstall)
    assert key_at_position(Product, 0) == UNAVAILABLE  # no triggers: never trust the counts
    Product.objects.bulk_create([product(pk) for pk in [-5, *range(0, 20_000, 7), 2**53]])
    Category.objects.create(id=3, name="c", url="https://shop.example/c")
    assert counted(Product) == {}  # written without triggers
    run(migration.install)
    assert counted(Category) == {0: 1}
    assert_exact(Product, [0, 1, 1000, 2857, 2858, 2859])
    # And the recount for ops gives the same after the counts were damaged.
    RankBucket.objects.filter(table_name="shop_product").delete()
    rank_index.rebuild_counts(Product)
    assert_exact(Product, [0, 2858])


# --- the property --------------------------------------------------------------------------------
ids = st.one_of(
    st.integers(-9000, 9000),  # dense, across buckets -3…2 and id 0
    st.sampled_from([-(2**12) - 1, -(2**12), -1, 0, 2**12 - 1, 2**12]),  # bucket edges
    st.integers(-(2**53), 2**53),  # sparse, huge, negative
)
operations = st.one_of(
    st.tuples(st.just("save"), ids),
    st.tuples(st.just("bulk_create"), st.lists(ids, max_size=20)),
    st.tuples(st.just("import"), st.lists(ids, min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("queryset_delete"), ids, st.integers(0, 2**13)),
    st.tuples(st.just("raw_delete"), st.lists(st.integers(0, 50), max_size=5)),
    st.tuples(st.just("move"), st.integers(0, 50), ids),
    st.tuples(st.just("rolled_back"), st.lists(ids, max_size=10)),
)


def apply(op: tuple) -> None:
    kind, *args = op
    existing = list(Product.objects.order_by("id").values_list("id", flat=True))
    pick = (lambda i: existing[i % len(existing)]) if existing else (lambda i: None)
    if kind == "save":
        if args[0] not in existing:
            product(args[0]).save(force_insert=True)
    elif kind == "bulk_create":
        Product.objects.bulk_create([product(pk) for pk in args[0]], ignore_conflicts=True)
    elif kind == "import":
        import_cleanly({"products": [imported(pk, name=f"v{len(existing)}") for pk in dict.fromkeys(args[0])]})
    elif kind == "delete" and existing:
        Product.objects.get(id=pick(args[0])).delete()
    elif kind == "queryset_delete":
        Product.objects.filter(id__gte=args[0], id__lte=args[0] + args[1]).delete()
    elif kind == "raw_delete" and existing:
        raw("DELETE FROM shop_product WHERE id = ANY(%s)", [[pick(i) for i in args[0]]])
    elif kind == "move" and existing and args[1] not in existing:
        raw("UPDATE shop_product SET id = %s WHERE id = %s", [args[1], pick(args[0])])
    elif kind == "rolled_back":
        with transaction.atomic():
            Product.objects.bulk_create([product(pk) for pk in args[0]], ignore_conflicts=True)
            Product.objects.filter(id__in=existing[:3]).delete()
            transaction.set_rollback(True)


@on_postgresql
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=1, max_size=12), probes=st.lists(st.integers(0, 80), max_size=4))
def test_property_the_seek_equals_the_offset_seek_after_any_writes(db, ops, probes):
    with transaction.atomic():  # each example starts from an empty table
        assert counted(Product) == {}
        for op in ops:
            apply(op)
        n = Product.objects.count()
        assert_exact(Product, {0, max(n - 1, 0), n, n + 1, *probes})
        transaction.set_rollback(True)
