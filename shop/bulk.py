"""Bulk reads and writes by id for the importer, fast on PostgreSQL, portable elsewhere.

`fetch_rows`, `fetch_grouped`, `upsert_rows` and `insert_rows` take and return rows as plain
tuples in the order of the `columns` given (JSON columns as Python values on every backend).
On PostgreSQL each is one statement per batch whatever its size (`= ANY(array)`, `INSERT …
SELECT FROM unnest(arrays) … ON CONFLICT`), through a server-side-binding psycopg cursor on
Django's connection (same transaction; not in Django's query log). Elsewhere (SQLite) they use
the ORM (`values_list`, `bulk_create(update_conflicts=True)`).

See docs/import.md ("Architecture (shop data path)", bulk reads and writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from django.db import connection
from django.db.models import Field, JSONField, Model
from psycopg.types.datetime import TimestamptzLoader


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def _binding_cursor():
    connection.ensure_connection()
    # Driver errors become Django's (IntegrityError, DataError…), as through Django's cursors.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # psycopg's own (C) loader: Django's per-connection one is Python, and costs a million
        # calls per million rows. Both give aware datetimes in the session's time zone, UTC.
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        yield cursor


def _fields(model: type[Model], columns: Sequence[str]) -> list[Field]:
    return [model._meta.get_field(name) for name in columns]


def fetch_rows(model: type[Model], columns: Sequence[str], ids: Sequence[int], *, key: str = "pk") -> list[tuple]:
    """`columns` of the rows whose `key` (the primary key by default) is in `ids`, unordered."""
    if not ids:
        return []
    fields = _fields(model, columns)
    if not _postgresql():
        return list(model._base_manager.filter(**{f"{key}__in": ids}).values_list(*columns))
    select = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    key_field = model._meta.pk if key == "pk" else model._meta.get_field(key)
    where = connection.ops.quote_name(key_field.column)
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]
    with _binding_cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM {table} WHERE {where} = ANY(%s::bigint[])", [list(ids)])
        rows = cursor.fetchall()
    if not json_positions:
        return rows
    loaded = []
    for row in rows:
        row = list(row)
        for i in json_positions:
            if row[i] is not None:
                row[i] = orjson.loads(row[i])
        loaded.append(tuple(row))
    return loaded


def fetch_grouped(model: type[Model], key: str, value: str, keys: Sequence[int]) -> dict[int, tuple]:
    """{key: sorted tuple of `value`} over the rows whose `key` is in `keys` (keys without
    rows are absent): a product's categories, a category's children."""
    if not keys:
        return {}
    if not _postgresql():
        grouped: dict[int, list] = {}
        for k, v in model._base_manager.filter(**{f"{key}__in": keys}).values_list(key, value):
            grouped.setdefault(k, []).append(v)
        return {k: tuple(sorted(vs)) for k, vs in grouped.items()}
    quote = connection.ops.quote_name
    key_column = quote(model._meta.get_field(key).column)
    value_column = quote(model._meta.get_field(value).column)
    sql = (
        f"SELECT {key_column}, array_agg({value_column} ORDER BY {value_column}) "
        f"FROM {quote(model._meta.db_table)} WHERE {key_column} = ANY(%s::bigint[]) GROUP BY {key_column}"
    )
    with _binding_cursor() as cursor:
        cursor.execute(sql, [list(keys)])
        return {k: tuple(vs) for k, vs in cursor.fetchall()}


def upsert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert `rows` (tuples over `columns`, the primary key first), or update every column but
    the key of the rows whose id exists."""
    if not rows:
        return
    if not _postgresql():
        names = [f.attname for f in _fields(model, columns)]
        model._base_manager.bulk_create(
            [model(**dict(zip(names, row, strict=True))) for row in rows],
            update_conflicts=True,
            unique_fields=[columns[0]],
            update_fields=list(columns[1:]),
        )
        return
    fields = _fields(model, columns)
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(f.column)} = EXCLUDED.{quote(f.column)}" for f in fields[1:])
    sql = f"{_insert_unnest(model, fields)} ON CONFLICT ({quote(fields[0].column)}) DO UPDATE SET {updates}"
    with _binding_cursor() as cursor:
        cursor.execute(sql, _column_arrays(fields, rows))


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert `rows` (tuples over `columns`); the model's own primary key is generated."""
    if not rows:
        return
    fields = _fields(model, columns)
    if not _postgresql():
        names = [f.attname for f in fields]
        model._base_manager.bulk_create([model(**dict(zip(names, row, strict=True))) for row in rows])
        return
    with _binding_cursor() as cursor:
        cursor.execute(_insert_unnest(model, fields), _column_arrays(fields, rows))


def _insert_unnest(model: type[Model], fields: list[Field]) -> str:
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}" for f in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays})"


def _array_type(field: Field) -> str:
    db_type = field.cast_db_type(connection) if not field.is_relation else field.target_field.cast_db_type(connection)
    # A length limit in a cast truncates silently; the column's own type still enforces it.
    base = db_type.split("(")[0] if db_type.startswith("varchar") else db_type
    return f"{base}[]"


def _column_arrays(fields: list[Field], rows: Sequence[tuple]) -> list[list[Any]]:
    arrays: list[list[Any]] = [list(values) for values in zip(*rows, strict=True)]
    for i, field in enumerate(fields):
        if isinstance(field, JSONField):
            arrays[i] = [None if v is None else orjson.dumps(v).decode() for v in arrays[i]]
    return arrays
