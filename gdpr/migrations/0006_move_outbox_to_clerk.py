"""The outbox (`ClerkDeletion`, `DeliveryAttempt`) now belongs to the clerk app (clerk 0001).

State only: the tables stay, under their names, and clerk's models name them.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gdpr", "0005_holding_blocks"),
        ("clerk", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="deliveryattempt", name="deletion"),
                migrations.DeleteModel(name="ClerkDeletion"),
                migrations.DeleteModel(name="DeliveryAttempt"),
            ],
            database_operations=[],
        ),
    ]
