"""The rank index of the catalogue tables: per-bucket row counts kept by PostgreSQL triggers.

`feeds.rank_index` reads `feeds_rankbucket` to find the primary key at a position without
counting every key before it. The counts are exact only because they change in the same
transaction, and the same statement, as the rows they count; so they are written by triggers on
`shop_product`, `shop_category` and `shop_page`, never by Django code:

* AFTER INSERT, per statement, with the inserted rows as a transition table: one
  `INSERT … SELECT bucket, count(*) … GROUP BY … ON CONFLICT DO UPDATE` adds them up. An
  `INSERT … ON CONFLICT DO UPDATE` (the importer's upsert) lists only the rows it inserted
  there, so an updated row is not counted again.
* AFTER DELETE, per statement, with the deleted rows: the same statement with negative counts,
  then the buckets that fell to zero are deleted.
* AFTER UPDATE OF id, per row, only when the id changes: the row moves from its old bucket to
  its new one. Per row, not per statement, because a trigger with transition tables cannot be
  limited to a column: it would materialise every row of every UPDATE (the importer updates
  thousands per batch) to find the rare changed key. A changed key is counted, not refused.
* AFTER TRUNCATE: the table's buckets are deleted.

All four fire ALWAYS, also under `session_replication_role = replica` (what `bench/seed_pg.py`
uses to skip foreign key checks on bulk loads): a counted row must never come in unseen. The
price: on a logical replication subscriber they fire for replicated rows too, so publish the
shop tables without `feeds_rankbucket` (the subscriber counts for itself). Physical replicas
(`DATABASE_REPLICA_URL`) run no triggers and receive the counts with the rows.

Buckets are updated in ascending order within a statement, so two statements that touch the
same buckets lock them in the same order. Two concurrent transactions that write rows in the same
bucket queue on that bucket's row until the first commits (new products all land in the highest
bucket: concurrent imports of new products serialise there).

The backfill counts the rows that exist when the triggers are installed, in one
`INSERT … SELECT … GROUP BY` (a million products: about half a second). It runs after
`CREATE TRIGGER`, whose lock (SHARE ROW EXCLUSIVE) keeps writers out until the migration
commits, so no row is missed or counted twice. SQLite gets no triggers and no counts:
`feeds.rank_index` answers "unavailable" there.
"""

from django.db import migrations, models

# Frozen copy of feeds.rank_index.SHIFT: a bucket holds 2**SHIFT consecutive ids. Changing it
# needs a new migration that rebuilds the counts (tests check that the two agree).
SHIFT = 12
# Frozen copy of feeds.rank_index.COUNTED_TABLES: the catalogue tables the feeds seek in.
TABLES = ("shop_product", "shop_category", "shop_page")
TRIGGERS = ("feeds_rank_insert", "feeds_rank_delete", "feeds_rank_move", "feeds_rank_truncate")

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION feeds_rank_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO feeds_rankbucket AS b (table_name, bucket, row_count)
    SELECT TG_TABLE_NAME, n.id >> {SHIFT}, count(*) FROM rank_new n GROUP BY 2 ORDER BY 2
    ON CONFLICT (table_name, bucket) DO UPDATE SET row_count = b.row_count + EXCLUDED.row_count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION feeds_rank_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    emptied bigint[];
BEGIN
    -- An upsert, not an UPDATE … FROM: it visits buckets in the order given, as the insert does.
    WITH counted AS (
        INSERT INTO feeds_rankbucket AS b (table_name, bucket, row_count)
        SELECT TG_TABLE_NAME, o.id >> {SHIFT}, -count(*) FROM rank_old o GROUP BY 2 ORDER BY 2
        ON CONFLICT (table_name, bucket) DO UPDATE SET row_count = b.row_count + EXCLUDED.row_count
        RETURNING b.bucket, b.row_count
    )
    SELECT array_agg(bucket) INTO emptied FROM counted WHERE row_count <= 0;
    IF emptied IS NOT NULL THEN
        DELETE FROM feeds_rankbucket WHERE table_name = TG_TABLE_NAME AND bucket = ANY (emptied);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION feeds_rank_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.id >> {SHIFT} = NEW.id >> {SHIFT} THEN
        RETURN NULL;
    END IF;
    INSERT INTO feeds_rankbucket AS b (table_name, bucket, row_count)
    SELECT TG_TABLE_NAME, d.bucket, d.delta
    FROM (VALUES (OLD.id >> {SHIFT}, -1::bigint), (NEW.id >> {SHIFT}, 1::bigint)) AS d (bucket, delta)
    ORDER BY d.bucket
    ON CONFLICT (table_name, bucket) DO UPDATE SET row_count = b.row_count + EXCLUDED.row_count;
    DELETE FROM feeds_rankbucket
    WHERE table_name = TG_TABLE_NAME AND bucket = OLD.id >> {SHIFT} AND row_count <= 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION feeds_rank_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM feeds_rankbucket WHERE table_name = TG_TABLE_NAME;
    RETURN NULL;
END $$;
"""


def triggers_sql(table: str) -> str:
    """Install the four triggers on `table` (a name from TABLES, never user input)."""
    return f"""
CREATE TRIGGER feeds_rank_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS rank_new
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_rank_count_inserted();
CREATE TRIGGER feeds_rank_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS rank_old
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_rank_count_deleted();
CREATE TRIGGER feeds_rank_move AFTER UPDATE OF id ON {table}
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION feeds_rank_count_moved();
CREATE TRIGGER feeds_rank_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_rank_reset();
ALTER TABLE {table}
    ENABLE ALWAYS TRIGGER feeds_rank_insert,
    ENABLE ALWAYS TRIGGER feeds_rank_delete,
    ENABLE ALWAYS TRIGGER feeds_rank_move,
    ENABLE ALWAYS TRIGGER feeds_rank_truncate;
"""


def backfill_sql(table: str) -> str:
    """Recount `table` from scratch: its buckets replaced by one grouped scan of its keys.

    Exact only while no other transaction writes `table` (the migration holds the trigger
    lock; `feeds.rank_index.rebuild_counts` takes a lock of its own)."""
    return f"""
DELETE FROM feeds_rankbucket WHERE table_name = '{table}';
INSERT INTO feeds_rankbucket (table_name, bucket, row_count)
    SELECT '{table}', id >> {SHIFT}, count(*) FROM {table} GROUP BY 2 ORDER BY 2;
"""


def drop_sql(table: str) -> str:
    return "".join(f"DROP TRIGGER IF EXISTS {name} ON {table};\n" for name in TRIGGERS)


DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS feeds_rank_count_inserted();
DROP FUNCTION IF EXISTS feeds_rank_count_deleted();
DROP FUNCTION IF EXISTS feeds_rank_count_moved();
DROP FUNCTION IF EXISTS feeds_rank_reset();
"""


def install(apps, schema_editor) -> None:
    """Functions, then each table's triggers (which lock out its writers), then its backfill."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS, params=None)
    for table in TABLES:
        schema_editor.execute(triggers_sql(table), params=None)
        schema_editor.execute(backfill_sql(table), params=None)


def uninstall(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(drop_sql(table), params=None)
    schema_editor.execute(DROP_FUNCTIONS, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("feeds", "0001_import_runs"),
        ("shop", "0003_fast_json_fields"),
    ]

    operations = [
        migrations.CreateModel(
            name="RankBucket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("table_name", models.CharField(max_length=63, verbose_name="table")),
                ("bucket", models.BigIntegerField(verbose_name="bucket")),
                ("row_count", models.IntegerField(verbose_name="rows")),
            ],
            options={
                "verbose_name": "rank bucket",
                "verbose_name_plural": "rank buckets",
                "constraints": [
                    models.UniqueConstraint(fields=("table_name", "bucket"), name="rankbucket_table_bucket")
                ],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
