"""Clerk holdings (reconciliation by state) and the sweep mark's new meaning.

The holdings are seeded with every existing customer and order: an upgraded deployment cannot
know what earlier versions served under other settings, so the first sweep asks Clerk to delete
everything the policy does not admit now (deleting an id Clerk never had is harmless). The old
"aged out until" mark is dropped: the sweep no longer compares two moments.
"""

from django.db import migrations, models
from django.utils import timezone


def drop_old_marks(apps, schema_editor):
    apps.get_model("gdpr", "SweepMark").objects.using(schema_editor.connection.alias).all().delete()


def seed_holdings(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    holding = quote(apps.get_model("gdpr", "ClerkHolding")._meta.db_table)
    since = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        for object_type, model in (("customers", "Customer"), ("orders", "Order")):
            table = quote(apps.get_model("shop", model)._meta.db_table)
            cursor.execute(
                f"INSERT INTO {holding} (object_type, object_id, since) SELECT %s, id, %s FROM {table}",
                [object_type, since],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("gdpr", "0003_consent_ledger_append_only_trigger"),
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(drop_old_marks, migrations.RunPython.noop),
        migrations.RemoveField(model_name="sweepmark", name="swept_until"),
        migrations.AddField(
            model_name="sweepmark",
            name="swept_at",
            field=models.DateTimeField(default=timezone.now, verbose_name="swept at"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="sweepmark",
            name="purpose",
            field=models.CharField(default="", max_length=16, verbose_name="data purpose"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="sweepmark",
            name="recent_days",
            field=models.PositiveIntegerField(default=0, verbose_name="recent days"),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name="ClerkHolding",
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
                ("object_id", models.BigIntegerField(verbose_name="object id")),
                ("since", models.DateTimeField(verbose_name="handed out since")),
            ],
            options={
                "verbose_name": "Clerk holding",
                "verbose_name_plural": "Clerk holdings",
                "constraints": [
                    models.UniqueConstraint(fields=("object_type", "object_id"), name="holding_object"),
                    models.CheckConstraint(
                        condition=models.Q(("object_type__in", ["customers", "orders"])),
                        name="holding_personal_type",
                    ),
                ],
            },
        ),
        migrations.RunPython(seed_holdings, migrations.RunPython.noop),
    ]
