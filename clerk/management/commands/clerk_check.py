"""`manage.py clerk_check`: can this deployment serve Clerk right now? (see clerk.health)"""

from __future__ import annotations

import sys

import orjson
from django.core.management.base import BaseCommand

from clerk.health import Level, Options, exit_status, registered_checks, run_all


class Command(BaseCommand):
    help = (
        "Check the deployment: settings (check --deploy), database and migrations, the shared "
        "cache, Clerk's token service (a real call), a sample page of every feed against Clerk's "
        "rules, the GDPR deletion outbox, pushes and the reconciliation pass, and the latest imports by Clerk. "
        "Exit status: 0 all ok, 1 a warning, 2 a failure."
    )
    # The settings check runs the system checks itself, deployment checks included, and
    # reports them; the command must not stop before that on an error.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout, for machines")
        parser.add_argument("--sample", type=int, default=100, help="objects per feed to validate (default 100)")
        parser.add_argument(
            "--outbox-warn-minutes",
            type=int,
            default=30,
            help="warn when a deletion has waited this long for Clerk (default 30)",
        )
        parser.add_argument(
            "--outbox-fail-minutes",
            type=int,
            default=24 * 60,
            help="fail when a deletion has waited this long (default 1440)",
        )
        parser.add_argument(
            "--push-fail-minutes",
            type=int,
            default=60,
            help="fail when a push to Clerk has waited this long (default 60)",
        )
        parser.add_argument(
            "--import-max-age-hours",
            type=int,
            default=48,
            help="warn when a feed's newest complete import by Clerk is older (default 48)",
        )
        parser.add_argument(
            "--sweep-max-age-hours",
            type=int,
            default=26,
            help="fail when the last GDPR reconciliation pass (gdpr_sweep) is older (default 26)",
        )
        parser.add_argument(
            "--skip",
            action="append",
            default=[],
            choices=sorted(check.name for check in registered_checks()),
            help="leave a check out (repeatable), e.g. --skip clerk_api on a host without egress",
        )

    def handle(self, *args, **opts):
        options = Options(
            sample=max(1, opts["sample"]),
            outbox_warn_minutes=opts["outbox_warn_minutes"],
            outbox_fail_minutes=opts["outbox_fail_minutes"],
            push_fail_minutes=opts["push_fail_minutes"],
            import_max_age_hours=opts["import_max_age_hours"],
            sweep_max_age_hours=opts["sweep_max_age_hours"],
            skip=frozenset(opts["skip"]),
        )
        results = run_all(options)
        status = exit_status(results)
        if opts["json"]:
            document = {
                "status": Level(status).label,
                "exit_status": status,
                "checks": [r.as_dict() for r in results],
            }
            self.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        else:
            self._print(results, status)
        if status:
            sys.exit(status)

    def _print(self, results, status: int) -> None:
        styles = {
            Level.OK: self.style.SUCCESS,
            Level.WARNING: self.style.WARNING,
            Level.FAILURE: self.style.ERROR,
            Level.SKIPPED: self.style.NOTICE,
        }
        width = max(len(r.name) for r in results) if results else 0
        for result in results:
            tag = styles[result.level](f"{result.level.label.upper():8}")
            self.stdout.write(f"{tag} {result.name:{width}}  {result.message}")
            for detail in result.details:
                self.stdout.write(f"{'':8} {'':{width}}    {detail}")
        counts = {level: sum(r.level == level for r in results) for level in Level}
        summary = (
            f"clerk_check: {counts[Level.OK]} ok, {counts[Level.WARNING]} warning(s), "
            f"{counts[Level.FAILURE]} failure(s)"
            + (f", {counts[Level.SKIPPED]} skipped" if counts[Level.SKIPPED] else "")
        )
        self.stdout.write(styles[Level(status)](summary))
