"""Per-bucket counts of the personal feeds' positions (`feeds_feedlisting`), kept by triggers.

The same scheme as `0002_rank_buckets`, in `feeds_rankbucket` under the name
`feeds_feedlisting:<feed>`: statement-level triggers add up the inserted rows and subtract the
deleted ones in the same transaction (an upsert's transition table holds only the rows it
inserted; a row's feed and id never change, and `listed` changes no position). PostgreSQL only;
`feeds.listing.key_at` seeks through them while the three triggers are enabled.
"""

from django.db import migrations

SHIFT = 12  # frozen copy of feeds.rank_index.SHIFT
TABLE = "feeds_feedlisting"
TRIGGERS = ("feeds_listing_insert", "feeds_listing_delete", "feeds_listing_truncate")

INSTALL = f"""
CREATE OR REPLACE FUNCTION feeds_listing_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO feeds_rankbucket AS b (table_name, bucket, row_count)
    SELECT '{TABLE}:' || n.feed, n.object_id >> {SHIFT}, count(*) FROM listing_new n GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (table_name, bucket) DO UPDATE SET row_count = b.row_count + EXCLUDED.row_count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION feeds_listing_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH counted AS (
        INSERT INTO feeds_rankbucket AS b (table_name, bucket, row_count)
        SELECT '{TABLE}:' || o.feed, o.object_id >> {SHIFT}, -count(*) FROM listing_old o GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (table_name, bucket) DO UPDATE SET row_count = b.row_count + EXCLUDED.row_count
        RETURNING b.table_name, b.bucket, b.row_count
    )
    DELETE FROM feeds_rankbucket r USING counted c
    WHERE r.table_name = c.table_name AND r.bucket = c.bucket AND c.row_count <= 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION feeds_listing_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM feeds_rankbucket WHERE table_name LIKE '{TABLE}:%';
    RETURN NULL;
END $$;

CREATE TRIGGER feeds_listing_insert AFTER INSERT ON {TABLE}
    REFERENCING NEW TABLE AS listing_new
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_listing_count_inserted();
CREATE TRIGGER feeds_listing_delete AFTER DELETE ON {TABLE}
    REFERENCING OLD TABLE AS listing_old
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_listing_count_deleted();
CREATE TRIGGER feeds_listing_truncate AFTER TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION feeds_listing_reset();
ALTER TABLE {TABLE}
    ENABLE ALWAYS TRIGGER feeds_listing_insert,
    ENABLE ALWAYS TRIGGER feeds_listing_delete,
    ENABLE ALWAYS TRIGGER feeds_listing_truncate;

DELETE FROM feeds_rankbucket WHERE table_name LIKE '{TABLE}:%';
INSERT INTO feeds_rankbucket (table_name, bucket, row_count)
    SELECT '{TABLE}:' || feed, object_id >> {SHIFT}, count(*) FROM {TABLE} GROUP BY 1, 2 ORDER BY 1, 2;
"""

UNINSTALL = f"""
{"".join(f"DROP TRIGGER IF EXISTS {name} ON {TABLE};" for name in TRIGGERS)}
DROP FUNCTION IF EXISTS feeds_listing_count_inserted();
DROP FUNCTION IF EXISTS feeds_listing_count_deleted();
DROP FUNCTION IF EXISTS feeds_listing_reset();
DELETE FROM feeds_rankbucket WHERE table_name LIKE '{TABLE}:%';
"""


def install(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def uninstall(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNINSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("feeds", "0003_feed_listing")]

    operations = [migrations.RunPython(install, uninstall)]
