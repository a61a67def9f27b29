"""The primary key at a position of a catalogue table, without counting every key before it.

`key_at_position(model, position)` and `key_at_position_in(queryset, position)` return a
`RankSeek`: the key that `ORDER BY id OFFSET position LIMIT 1` would give at that instant, past
the end, or `UNAVAILABLE` (the caller then uses the plain OFFSET seek). Per-bucket row counts
(`feeds.models.RankBucket`, buckets of 2**`SHIFT` ids, kept by the triggers of migration
`0002_rank_buckets`) make it one statement on one snapshot. PostgreSQL and `COUNTED_TABLES`
only. Maintenance: `armed`, `count_drift`, `rebuild_counts`, `counted_models`. The statement
itself, `counted_seek`, also serves the personal feeds' positions (`feeds.listing`).

See docs/feeds.md ("The rank index") for the proof of exactness and the bucket size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql.datastructures import BaseTable

from feeds.models import RankBucket

logger = logging.getLogger(__name__)

# A bucket is `id >> SHIFT`: 4,096 consecutive ids (docs/feeds.md, "The rank index"). The triggers of
# migration 0002_rank_buckets use the same value; changing it needs a migration that recounts.
SHIFT = 12
# Tables whose rows the triggers count: the catalogue, whose feeds are the whole table.
COUNTED_TABLES = frozenset({"shop_product", "shop_category", "shop_page"})
# The triggers that keep the counts, per table (all must exist and be enabled for a seek).
TRIGGERS = ("feeds_rank_insert", "feeds_rank_delete", "feeds_rank_move", "feeds_rank_truncate")


@dataclass(frozen=True)
class RankSeek:
    """The answer of a seek: the key at the position, past the end, or unavailable.

    `available` False: the rank index cannot answer; use the plain OFFSET seek. Otherwise `key`
    is the primary key at the position, or None when the table has no row there (past the end).
    """

    available: bool
    key: int | None = None

    @property
    def past_end(self) -> bool:
        return self.available and self.key is None


UNAVAILABLE = RankSeek(available=False)

_SEEK = f"""
WITH armed AS (
    SELECT count(*) = %(trigger_count)s AS ok FROM pg_trigger
    WHERE tgrelid = %(table)s::regclass AND tgname = ANY (%(triggers)s) AND tgenabled <> 'D'
), totals AS (
    SELECT bucket, row_count, sum(row_count) OVER (ORDER BY bucket) AS upto
    FROM {RankBucket._meta.db_table}
    WHERE table_name = %(counted)s AND (SELECT ok FROM armed)
), hit AS (
    SELECT bucket, %(position)s::bigint - (upto - row_count) AS within
    FROM totals WHERE upto > %(position)s::bigint ORDER BY bucket LIMIT 1
)
SELECT armed.ok, hit.bucket, found.{{key}}
FROM armed
LEFT JOIN hit ON true
LEFT JOIN LATERAL (
    SELECT {{key}} FROM {{rows}}
    WHERE {{rows_filter}}{{key}} BETWEEN hit.bucket << {SHIFT} AND (hit.bucket << {SHIFT}) | {2**SHIFT - 1}
    ORDER BY {{key}} OFFSET hit.within LIMIT 1
) AS found ON true
"""


def counted_seek(
    connection,
    *,
    table: str,
    counted: str,
    triggers: tuple[str, ...],
    position: int,
    key: str = "id",
    rows_filter: str = "",
    params: dict | None = None,
) -> tuple[bool, int | None, int | None]:
    """(armed, bucket, key at `position`) in one statement over `feeds_rankbucket`'s counts
    under `counted`, stepping over one bucket of `table`'s `key`s (those `rows_filter`, a SQL
    condition ending in AND over `params`, keeps). `armed` is False when a trigger of `triggers`
    on `table` is missing or disabled; `bucket` None is past the end. The one home of the
    counted seek: the catalogue's rank index and the personal feeds' listing read it."""
    qn = connection.ops.quote_name
    sql = _SEEK.format(key=qn(key), rows=qn(table), rows_filter=rows_filter)
    values = {
        "table": table,
        "triggers": list(triggers),
        "trigger_count": len(triggers),
        "counted": counted,
        # No table holds 2**63 rows: a position beyond a bigint is past the end like the largest.
        "position": min(position, 2**63 - 1),
        **(params or {}),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchone()


def key_at_position(model: type[Model], position: int, *, using: str | None = None) -> RankSeek:
    """The primary key at 0-based `position` of `model`'s whole table in key order, in one query.

    Equal to `SELECT id FROM <table> ORDER BY id OFFSET position LIMIT 1` at the same instant
    (past the end where that has no row): every row of the table counts, whatever a manager
    filters. `using`: the database alias; by default where the router sends reads of `model`
    (the replica inside `replica_reads()`: a physical replica receives the counts with the rows).
    """
    if position < 0:
        raise ValueError("position must be 0 or more")
    alias = using or router.db_for_read(model)
    connection = connections[alias]
    table = model._meta.db_table
    if connection.vendor != "postgresql" or table not in COUNTED_TABLES or model._meta.pk.column != "id":
        return UNAVAILABLE
    armed, bucket, key = counted_seek(connection, table=table, counted=table, triggers=TRIGGERS, position=position)
    if not armed:
        return UNAVAILABLE
    if bucket is None:
        return RankSeek(available=True, key=None)
    if key is None:
        # The counts promise a row in this bucket that is not there: they drifted from the rows.
        logger.warning("rank index inconsistent", extra={"table": table, "bucket": bucket})
        return UNAVAILABLE
    return RankSeek(available=True, key=key)


def covers_whole_table(queryset: QuerySet) -> bool:
    """Whether `queryset` has exactly one row per row of its model's table (no filter, join,
    grouping, distinct, union or slice), so its positions are the table's positions.

    Annotations that read only the row itself (e.g. `feeds.base.UnixTime`) are fine."""
    query = queryset.query
    return not (
        query.where
        or query.distinct
        or query.combinator
        or query.group_by is not None
        or query.is_sliced
        or query.select_related
        or query.extra_tables
        or any(not isinstance(join, BaseTable) for join in query.alias_map.values())
    )


def key_at_position_in(queryset: QuerySet, position: int) -> RankSeek:
    """`key_at_position` for a queryset over a whole counted table (on its database), else
    unavailable: the counts say nothing about positions within a filtered set."""
    if not covers_whole_table(queryset):
        return UNAVAILABLE
    return key_at_position(queryset.model, position, using=queryset.db)


def rebuild_counts(model: type[Model], *, using: str | None = None) -> None:
    """Recount `model`'s table from its rows (after a restore or a load made without triggers).

    Locks the table against writers (readers go on) for one grouped scan of its keys (its cost:
    bench/README.md, "Figures from the code")."""
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    table = model._meta.db_table
    if connection.vendor != "postgresql" or table not in COUNTED_TABLES:
        return
    quoted = connection.ops.quote_name(table)
    buckets = RankBucket._meta.db_table
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {buckets} WHERE table_name = %s", [table])
        cursor.execute(
            f"INSERT INTO {buckets} (table_name, bucket, row_count) "
            f"SELECT %s, id >> {SHIFT}, count(*) FROM {quoted} GROUP BY 2 ORDER BY 2",
            [table],
        )


@dataclass(frozen=True)
class Drift:
    """A bucket whose stored count differs from its rows (0 where one side has nothing)."""

    bucket: int
    counted: int
    actual: int


def armed(model: type[Model], *, using: str | None = None) -> bool | None:
    """Whether every counting trigger of `model`'s table exists and is enabled; None where the
    rank index does not apply (not PostgreSQL, a table it does not count)."""
    connection = connections[using or router.db_for_read(model)]
    table = model._meta.db_table
    if connection.vendor != "postgresql" or table not in COUNTED_TABLES:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = ANY (%s) AND tgenabled <> 'D'",
            [table, list(TRIGGERS)],
        )
        return cursor.fetchone()[0] == len(TRIGGERS)


def count_drift(model: type[Model], *, using: str | None = None) -> list[Drift] | None:
    """The buckets whose counts differ from `model`'s rows, by one grouped scan of its keys;
    None where the rank index does not apply.

    Counts that are too low make an exact cold seek start too late, i.e. skip rows: they can
    only come from writes made without the triggers (a restore with `--disable-triggers`, a
    load with the triggers disabled, hand edits). `manage.py rank_index --rebuild` recounts."""
    connection = connections[using or router.db_for_read(model)]
    table = model._meta.db_table
    if connection.vendor != "postgresql" or table not in COUNTED_TABLES:
        return None
    quoted = connection.ops.quote_name(table)
    sql = f"""
        SELECT coalesce(stored.bucket, rows.bucket), coalesce(stored.row_count, 0), coalesce(rows.n, 0)
        FROM (SELECT bucket, row_count FROM {RankBucket._meta.db_table} WHERE table_name = %s) AS stored
        FULL JOIN (SELECT id >> {SHIFT} AS bucket, count(*) AS n FROM {quoted} GROUP BY 1) AS rows
            ON rows.bucket = stored.bucket
        WHERE stored.row_count IS DISTINCT FROM rows.n
        ORDER BY 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [table])
        return [Drift(bucket=b, counted=c, actual=a) for b, c, a in cursor.fetchall()]


def counted_models() -> list[type[Model]]:
    """The shop models whose tables the rank index counts, in a stable order."""
    from django.apps import apps

    return sorted((m for m in apps.get_models() if m._meta.db_table in COUNTED_TABLES), key=lambda m: m._meta.db_table)
