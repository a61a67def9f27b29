"""Clerk holdings as bits of 64-id blocks: a feed page's recording touches a few rows, not one
per object. Every id held before is held after (the conversion is one set-based statement)."""

from django.db import migrations, models


def to_blocks(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    old = quote(apps.get_model("gdpr", "ClerkHolding")._meta.db_table)
    new = quote(apps.get_model("gdpr", "ClerkHoldingBlock")._meta.db_table)
    # The ids of a block are distinct, so the sum of their bits is their OR (bit 63 is the sign
    # bit: every partial sum stays within a BIGINT).
    bit = "(1 << (object_id & 63))" if connection.vendor == "sqlite" else "(CAST(1 AS BIGINT) << CAST(object_id & 63 AS INTEGER))"
    block = "(object_id >> 6)"
    total = f"CAST(SUM({bit}) AS BIGINT)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {new} (object_type, block, bits, since) "
            f"SELECT object_type, {block}, {total}, MIN(since) FROM {old} GROUP BY object_type, {block}"
        )


class Migration(migrations.Migration):
    dependencies = [("gdpr", "0004_clerk_holdings")]

    operations = [
        migrations.CreateModel(
            name="ClerkHoldingBlock",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "object_type",
                    models.CharField(
                        choices=[
                            ("products", "product"), ("categories", "category"), ("customers", "customer"),
                            ("orders", "order"), ("pages", "page"),
                        ],
                        max_length=16,
                        verbose_name="object type",
                    ),
                ),
                ("block", models.BigIntegerField(verbose_name="block of 64 ids")),
                ("bits", models.BigIntegerField(verbose_name="ids held in the block")),
                ("since", models.DateTimeField(verbose_name="first handed out")),
            ],
            options={
                "verbose_name": "Clerk holding",
                "verbose_name_plural": "Clerk holdings",
                "constraints": [
                    models.UniqueConstraint(fields=("object_type", "block"), name="holding_block"),
                    models.CheckConstraint(
                        condition=models.Q(("object_type__in", ["customers", "orders"])),
                        name="holding_block_personal_type",
                    ),
                ],
            },
        ),
        migrations.RunPython(to_blocks, migrations.RunPython.noop),
        migrations.DeleteModel("ClerkHolding"),
        migrations.RenameModel("ClerkHoldingBlock", "ClerkHolding"),
    ]
