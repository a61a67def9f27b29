"""The periodic commands, run by compose's scheduler service: `python -m clerkfeeds.scheduler`.

Jobs (UTC): `clerk_check` every 5 minutes, `gdpr_sweep` daily at 02:30, `prune_history` daily at
03:45 (the worker also sweeps hourly). Each runs as `manage.py <command>` in a child process, one
at a time; a missed run is done once, not repeated. Every run logs one JSON line with its exit
status; a non-zero exit is logged as an error and makes `--health` (the container's health
check) fail until that job next succeeds, so `docker compose ps` shows it. SIGTERM stops the
loop between runs. Why not cron or a scheduler library: docs/operations.md, "Scheduler".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = Path(os.environ.get("SCHEDULER_STATE_FILE", "/tmp/clerkfeeds-scheduler.json"))  # noqa: S108
MANAGE = [sys.executable, str(Path(__file__).resolve().parents[1] / "manage.py")]


@dataclass(frozen=True)
class Job:
    command: tuple[str, ...]
    every: dt.timedelta | None = None  # a period, or
    at: dt.time | None = None  # a time of day (UTC)

    @property
    def name(self) -> str:
        return self.command[0]

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if self.every is not None:
            return moment + self.every
        assert self.at is not None  # noqa: S101 - one of the two, by construction
        today = dt.datetime.combine(moment.date(), self.at, tzinfo=dt.UTC)
        return today if today > moment else today + dt.timedelta(days=1)


JOBS = (
    Job(("clerk_check", "--json"), every=dt.timedelta(minutes=5)),
    Job(("gdpr_sweep",), at=dt.time(2, 30)),
    Job(("prune_history",), at=dt.time(3, 45)),
)


def run_job(job: Job) -> int:
    return subprocess.run([*MANAGE, *job.command], check=False).returncode  # noqa: S603


def log(level: str, **fields) -> None:
    fields = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "level": level, **fields}
    print(json.dumps(fields), flush=True)


def record(job: Job, status: int, *, state_file: Path) -> None:
    state = read_state(state_file)
    state[job.name] = status
    state_file.write_text(json.dumps(state))


def read_state(state_file: Path) -> dict[str, int]:
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}


def healthy(state_file: Path | None = None) -> bool:
    return all(status == 0 for status in read_state(state_file or STATE_FILE).values())


def run_due(
    due: dict[Job, dt.datetime],
    *,
    now: dt.datetime,
    runner: Callable[[Job], int] = run_job,
    state_file: Path | None = None,
) -> list[Job]:
    """Run every job whose time has come (once, however late) and schedule its next run."""
    ran = []
    for job, when in due.items():
        if when > now:
            continue
        started = time.monotonic()
        status = runner(job)
        record(job, status, state_file=state_file or STATE_FILE)
        log(
            "ERROR" if status else "INFO",
            job=job.name,
            exit=status,
            seconds=round(time.monotonic() - started, 1),
        )
        due[job] = job.next_after(now)
        ran.append(job)
    return ran


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run clerkfeeds' periodic commands.")
    parser.add_argument("--health", action="store_true", help="exit 1 when a job's last run failed")
    args = parser.parse_args(argv)
    if args.health:
        return 0 if healthy() else 1
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    STATE_FILE.unlink(missing_ok=True)
    now = dt.datetime.now(dt.UTC)
    # clerk_check at once (a broken deployment shows in the first minute); the others on time.
    due = {job: now if job.every else job.next_after(now) for job in JOBS}
    log("INFO", scheduler="started", jobs={job.name: due[job].isoformat(timespec="minutes") for job in JOBS})
    while not stopping:
        run_due(due, now=dt.datetime.now(dt.UTC))
        time.sleep(1)
    log("INFO", scheduler="stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
