"""`manage.py gdpr_sweep`: queue Clerk deletions for what Clerk holds and the policy no longer admits."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from gdpr.sweep import sweep


class Command(BaseCommand):
    help = (
        "Compare every customer and order the feeds have handed out to Clerk with the GDPR "
        "policy now (CLERK_DATA_PURPOSE, GDPR_RECENT_DAYS, today's date) and queue the deletion "
        "of those it no longer admits (delivered by clerk_sync). `clerk_sync --loop` runs it at "
        "start and hourly; run it after changing a GDPR setting. Exit status 0."
    )

    def handle(self, *args, **options):
        self.stdout.write(str(sweep()))
