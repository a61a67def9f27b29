"""`manage.py clerk_sync`: deliver the outbox (deletions, pushes) to Clerk; `--loop` also runs the registered
reconciliation pass (`clerk.hooks.reconciles_with`: gdpr's sweep) at start and periodically."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from django.utils import timezone

from clerk import hooks
from clerk.delivery import deliver_pending


class Command(BaseCommand):
    help = (
        "Deliver the outbox to Clerk: pending deletions (objects, and /privacy/forget for erased "
        "people) and pushes of changed objects (CLERK_PUSH), in batches of at most 100 objects, "
        "with retries and backoff. One pass by default; --loop runs "
        "as a worker until SIGTERM/SIGINT. Exit status: 0 when the pass (or the worker) ended "
        "normally, 1 on a configuration error (missing Clerk keys)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep running as a worker")
        parser.add_argument(
            "--interval",
            type=float,
            default=10.0,
            help="seconds to sleep when nothing is due (worker; default 10)",
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=3600.0,
            help="seconds between reconciliation passes (gdpr_sweep) in the worker, which also runs one at start (0: never; default 3600)",
        )

    def handle(self, *args, loop: bool, interval: float, sweep_every: float, **options):
        from django.conf import settings

        if not settings.CLERK_PUBLIC_KEY or not settings.CLERK_PRIVATE_KEY:
            raise CommandError("CLERK_PUBLIC_KEY and CLERK_PRIVATE_KEY must be set to reach Clerk.")
        if not loop:
            self.stdout.write(str(deliver_pending()))
            return
        sweep = hooks.reconciliation()
        if sweep_every and sweep is None:  # fail closed: a worker that never reconciles is broken
            raise CommandError(
                "no reconciliation pass is registered (is the gdpr app installed?); --sweep-every 0 runs without one."
            )
        self._stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        last_sweep = None
        while not self._stopping:
            if not connection.in_atomic_block:  # (never inside a caller's transaction: tests)
                close_old_connections()  # a long-lived worker must survive database restarts
            if sweep_every and (last_sweep is None or time.monotonic() - last_sweep >= sweep_every):
                self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {sweep()}")
                last_sweep = time.monotonic()
            report = deliver_pending()
            if report.calls or report.superseded or report.deleted_instead:
                self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {report}")
                continue
            self._sleep(interval)
        self.stdout.write("clerk_sync worker stopped")

    def _stop(self, signum, frame):
        # Finish the current call and its acknowledgement, then stop.
        self._stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, deadline - time.monotonic()))
