"""`manage.py gdpr_sweep`: queue Clerk deletions for data that aged out of the window."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from gdpr.sweep import sweep_aged_out


class Command(BaseCommand):
    help = (
        "Find customers and orders that left the feeds because their data grew older than "
        "GDPR_RECENT_DAYS since the previous pass, and queue their deletion at Clerk (delivered "
        "by clerk_sync). Run it daily (cron) or let `clerk_sync --loop` run it. Exit status 0."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since-days", type=int, default=None,
            help="look back this many days instead of from the previous pass",
        )

    def handle(self, *args, since_days: int | None, **options):
        since = None
        if since_days is not None:
            if since_days < 0:
                raise CommandError("--since-days must be ≥ 0")
            since = timezone.now() - dt.timedelta(days=since_days)
        self.stdout.write(str(sweep_aged_out(since=since)))
