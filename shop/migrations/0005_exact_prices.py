"""Prices held exactly on SQLite too (`shop.models.ExactPriceField`).

On PostgreSQL nothing changes (numeric(18, 4) either way). On SQLite the columns become TEXT:
rebuilding the table turns each stored double into text, and `canonical_prices` then rewrites
every value as the field writes it, the decimal Django read from the double before (15
significant digits, 4 places) zero-padded to a fixed width.
"""

from decimal import Context

from django.db import migrations

import shop.models

PRICE_COLUMNS = (("Product", ("price", "list_price")), ("OrderLine", ("unit_price",)))


def canonical_prices(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    fifteen_digits = Context(prec=15)
    quote = schema_editor.quote_name
    for model_name, columns in PRICE_COLUMNS:
        model = apps.get_model("shop", model_name)
        table = quote(model._meta.db_table)
        for column in columns:
            field = model._meta.get_field(column)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, {quote(column)} FROM {table} WHERE {quote(column)} IS NOT NULL")
                rows = cursor.fetchall()
                updates = [
                    (field.get_db_prep_value(fifteen_digits.create_decimal(str(value)), connection), pk)
                    for pk, value in rows
                ]
                cursor.executemany(f"UPDATE {table} SET {quote(column)} = %s WHERE id = %s", updates)


class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0004_person_emails"),
    ]

    operations = [
        migrations.AlterField(
            model_name="orderline",
            name="unit_price",
            field=shop.models.ExactPriceField(decimal_places=4, max_digits=18, verbose_name="unit price"),
        ),
        migrations.AlterField(
            model_name="product",
            name="list_price",
            field=shop.models.ExactPriceField(
                blank=True, decimal_places=4, max_digits=18, null=True, verbose_name="list price"
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="price",
            field=shop.models.ExactPriceField(decimal_places=4, max_digits=18, verbose_name="price"),
        ),
        migrations.RunPython(canonical_prices, migrations.RunPython.noop, elidable=False),
    ]
