"""`manage.py feed_listing`: bring the personal feeds' positions in line with the policy now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from feeds.listing import refresh_all


class Command(BaseCommand):
    help = (
        "List every customer and order the feeds serve now, unlist those they no longer serve, "
        "and drop the positions unlisted longer than a walk (feeds.listing). clerk_sync --loop "
        "runs it after each reconciliation; run it once after a bulk import. Exit status 0."
    )

    def handle(self, *args, **options):
        for name, counts in refresh_all().items():
            self.stdout.write(f"{name}: {counts}")
