"""Running the `clerk_sync --loop` worker in a test: until the end of its first delivery pass."""

from __future__ import annotations

from unittest import mock

from django.core.management import call_command


def run_worker_once(**call_options) -> None:
    """The worker as started (its start-up sweep included), stopped after one delivery pass."""
    from clerk.management.commands import clerk_sync

    command = clerk_sync.Command()
    real = clerk_sync.deliver_pending

    def deliver_then_stop():
        report = real()
        command._stop(15, None)
        return report

    with mock.patch.object(clerk_sync, "deliver_pending", deliver_then_stop), mock.patch("signal.signal"):
        call_command(command, "--loop", "--interval", "0.1", **call_options)
