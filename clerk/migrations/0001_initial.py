"""The outbox moves from gdpr to clerk: the models' state only; the tables keep their names.

Nothing is copied: `ClerkDeletion` and `DeliveryAttempt` now name the tables gdpr created
(`db_table`), and gdpr's 0005 drops them from gdpr's state. Their content types move with them,
so granted permissions ("change Clerk deletion": retry) and admin log entries keep working.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MOVED = ("clerkdeletion", "deliveryattempt")


def content_types_to(app_label, other):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        for model in MOVED:
            if not types.filter(app_label=app_label, model=model).exists():
                types.filter(app_label=other, model=model).update(app_label=app_label)

    return move


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("gdpr", "0004_clerk_holdings"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ClerkDeletion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('action', models.CharField(choices=[('delete', 'delete object'), ('forget', 'forget person')], max_length=8, verbose_name='action')),
                        ('object_type', models.CharField(blank=True, choices=[('products', 'product'), ('categories', 'category'), ('customers', 'customer'), ('orders', 'order'), ('pages', 'page')], max_length=16, verbose_name='object type')),
                        ('object_id', models.BigIntegerField(blank=True, help_text='For a forget: the customer id, if any.', null=True, verbose_name='object id')),
                        ('email', models.EmailField(blank=True, help_text='Blanked once delivered.', max_length=254, verbose_name='email to forget')),
                        ('reason', models.CharField(choices=[('withdrawal', 'consent withdrawn'), ('erasure', 'right to erasure'), ('aged_out', 'data older than the window'), ('deleted', 'deleted in the shop'), ('left_feed', 'no longer eligible')], max_length=16, verbose_name='reason')),
                        ('status', models.CharField(choices=[('pending', 'pending'), ('delivered', 'delivered'), ('superseded', 'superseded (back in the feed)'), ('failed', 'failed (refused by Clerk)')], default='pending', max_length=12, verbose_name='status')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='queued at')),
                        ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='next attempt at')),
                        ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                        ('refusals', models.PositiveIntegerField(default=0, help_text='Capped: then the row fails.', verbose_name='refusals since last retry')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True, verbose_name='delivered at')),
                        ('last_error', models.TextField(blank=True, verbose_name='last error')),
                    ],
                    options={
                        'verbose_name': 'Clerk deletion',
                        'verbose_name_plural': 'Clerk deletions (outbox)',
                        'db_table': 'gdpr_clerkdeletion',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['status', 'next_attempt_at', 'id'], name='outbox_due'), models.Index(fields=['object_type', 'object_id'], name='outbox_object')],
                        'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('action', 'delete'), ('object_id__isnull', False), models.Q(('object_type', ''), _negated=True)), models.Q(('action', 'forget'), ('object_type', '')), _connector='OR'), name='outbox_action_shape')],
                    },
                ),
                migrations.CreateModel(
                    name='DeliveryAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('batch', models.UUIDField(db_index=True, verbose_name='batch')),
                        ('started_at', models.DateTimeField(verbose_name='started at')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                        ('outcome', models.CharField(choices=[('in_flight', 'sent, no acknowledgement recorded'), ('ok', 'ok'), ('unreachable', 'Clerk unreachable (will retry)'), ('refused', 'refused by Clerk'), ('superseded', 'not sent: back in the feed')], max_length=12, verbose_name='outcome')),
                        ('http_status', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='HTTP status')),
                        ('error', models.TextField(blank=True, verbose_name='error')),
                        ('deletion', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='clerk.clerkdeletion', verbose_name='deletion')),
                    ],
                    options={
                        'verbose_name': 'delivery attempt',
                        'verbose_name_plural': 'delivery attempts',
                        'db_table': 'gdpr_deliveryattempt',
                        'ordering': ['-started_at', '-id'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to("clerk", "gdpr"), content_types_to("gdpr", "clerk")),
    ]
