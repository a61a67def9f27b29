"""`manage.py prune_history`: bounded growth of import runs and of the outbox.

It lives in `feeds` (`feeds` → `clerk`): it needs `feeds.retention`, `clerk.retention` and the
feeds' `LONGEST_WALK`, which bounds how young an outbox row may be pruned.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from clerk import retention as outbox
from feeds import retention as import_runs
from feeds.pagination import LONGEST_WALK

DAY = dt.timedelta(days=1)


class Command(BaseCommand):
    help = (
        "Prune history: delete import runs older than --import-runs-days (the newest complete "
        "and the newest finished walk of each feed stay); for Clerk deletions delivered or "
        "superseded more than --outbox-days ago, delete their delivery attempts and blank any "
        "email and error text (the row stays as proof: action, type, id, reason, times, status); "
        "delete such rows entirely after --outbox-delete-days (0: keep the proof for ever). "
        "Pending and failed deletions are never touched. Works in batches of --batch-size rows. "
        "Run it daily (cron). Exit status: 0 done (or, with --dry-run, counted); 1 bad arguments."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--import-runs-days",
            type=int,
            default=_days(import_runs.DEFAULT_OLDER_THAN),
            metavar="N",
            help=f"delete import runs older than N days (default %(default)s, at least {_days(import_runs.MIN_AGE)})",
        )
        parser.add_argument(
            "--outbox-days",
            type=int,
            default=_days(outbox.DEFAULT_REDACT_AFTER),
            metavar="N",
            help="redact delivered/superseded deletions and delete their attempts after N days "
            f"(default %(default)s, at least {_days(outbox.MIN_AGE)})",
        )
        parser.add_argument(
            "--outbox-delete-days",
            type=int,
            default=_days(outbox.DEFAULT_DELETE_AFTER),
            metavar="N",
            help="delete settled deletions entirely after N days (default %(default)s, at least "
            "--outbox-days; 0 keeps them for ever)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=outbox.BATCH_SIZE,
            metavar="N",
            help="rows per UPDATE/DELETE (default %(default)s)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(
        self,
        *args,
        import_runs_days: int,
        outbox_days: int,
        outbox_delete_days: int,
        batch_size: int,
        dry_run: bool,
        **options,
    ):
        _at_least(
            "--import-runs-days",
            import_runs_days,
            import_runs.MIN_AGE,
            "a walk with a page in the last day may still be running",
        )
        _at_least(
            "--outbox-days",
            outbox_days,
            max(outbox.MIN_AGE, LONGEST_WALK),
            "the feeds' cold seeks read the outbox's recent history (feeds.pagination.LONGEST_WALK)",
        )
        if outbox_delete_days < 0:
            raise CommandError("--outbox-delete-days must be 0 (keep for ever) or a number of days.")
        if outbox_delete_days and outbox_delete_days < outbox_days:
            raise CommandError(
                f"--outbox-delete-days must be 0 (keep for ever) or at least --outbox-days ({outbox_days}): "
                "the proof outlives the logs."
            )
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")

        now = timezone.now()
        runs = import_runs.prune_import_runs(
            now=now, older_than=import_runs_days * DAY, dry_run=dry_run, batch_size=batch_size
        )
        report = outbox.prune_outbox(
            now=now,
            redact_after=outbox_days * DAY,
            delete_after=outbox_delete_days * DAY if outbox_delete_days else None,
            dry_run=dry_run,
            batch_size=batch_size,
        )
        if dry_run:
            summary = f"prune_history --dry-run, nothing changed: {runs} import run(s) to be deleted"
        else:
            summary = f"prune_history: {runs} import run(s) deleted"
        self.stdout.write(f"{summary}; {report}")


def _days(age: dt.timedelta) -> int:
    """Whole days, rounded up: a minimum stays a minimum."""
    return -(-age // DAY)


def _at_least(option: str, days: int, minimum: dt.timedelta, why: str) -> None:
    if days * DAY < minimum:
        raise CommandError(f"{option} must be at least {_days(minimum)} day(s): {why}.")
