"""Pushes join the outbox: action "push", a `version` per row, one pending intent per object.

Before the unique constraint, duplicate pending deletions of one object (two transactions could
queue one each) are merged: the newest stays pending, the older ones are superseded by it.
"""

from django.db import migrations, models
from django.db.models import Count, Max


def merge_duplicate_intents(apps, schema_editor):
    ClerkDeletion = apps.get_model("clerk", "ClerkDeletion")
    rows = ClerkDeletion.objects.using(schema_editor.connection.alias)
    pending = rows.filter(status="pending", action="delete")
    duplicates = (
        pending.values("object_type", "object_id").annotate(n=Count("id"), newest=Max("id")).filter(n__gt=1)
    )
    for group in duplicates:
        pending.filter(object_type=group["object_type"], object_id=group["object_id"], id__lt=group["newest"]).update(
            status="superseded", last_error="merged into a newer pending deletion of the same object"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('clerk', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='ClerkPush',
            fields=[
            ],
            options={
                'verbose_name': 'Clerk push',
                'verbose_name_plural': 'Clerk pushes (outbox)',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('clerk.clerkdeletion',),
        ),
        migrations.RemoveConstraint(
            model_name='clerkdeletion',
            name='outbox_action_shape',
        ),
        migrations.AddField(
            model_name='clerkdeletion',
            name='version',
            field=models.PositiveIntegerField(default=0, help_text='Moves with every intent coalesced into this row.', verbose_name='version'),
        ),
        migrations.AlterField(
            model_name='clerkdeletion',
            name='action',
            field=models.CharField(choices=[('delete', 'delete object'), ('forget', 'forget person'), ('push', 'push object')], max_length=8, verbose_name='action'),
        ),
        migrations.AlterField(
            model_name='clerkdeletion',
            name='reason',
            field=models.CharField(choices=[('withdrawal', 'consent withdrawn'), ('erasure', 'right to erasure'), ('aged_out', 'data older than the window'), ('deleted', 'deleted in the shop'), ('left_feed', 'no longer eligible'), ('changed', 'changed in the shop'), ('entered', 'entered the feeds')], max_length=16, verbose_name='reason'),
        ),
        migrations.AddConstraint(
            model_name='clerkdeletion',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('action__in', ['delete', 'push']), ('object_id__isnull', False), models.Q(('object_type', ''), _negated=True)), models.Q(('action', 'forget'), ('object_type', '')), _connector='OR'), name='outbox_action_shape_v2'),
        ),
        migrations.RunPython(merge_duplicate_intents, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name='clerkdeletion',
            constraint=models.UniqueConstraint(condition=models.Q(('action__in', ['delete', 'push']), ('status', 'pending')), fields=('object_type', 'object_id'), name='outbox_one_pending_intent'),
        ),
    ]
