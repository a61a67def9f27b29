"""The scheduler runs each periodic command on time, once however late, and a failure shows in
its health check until the job succeeds again."""

from __future__ import annotations

import datetime as dt

from clerkfeeds import scheduler
from clerkfeeds.scheduler import JOBS, Job, healthy, run_due

UTC = dt.UTC
CHECK = Job(("clerk_check", "--json"), every=dt.timedelta(minutes=5))
SWEEP = Job(("gdpr_sweep",), at=dt.time(2, 30))


def test_the_jobs_are_the_three_periodic_commands():
    assert {job.name for job in JOBS} == {"clerk_check", "gdpr_sweep", "prune_history"}


def test_a_daily_job_runs_at_its_time_of_day_today_or_tomorrow():
    before = dt.datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    after = dt.datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    assert SWEEP.next_after(before) == dt.datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert SWEEP.next_after(after) == dt.datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
    assert SWEEP.next_after(dt.datetime(2026, 3, 1, 2, 30, tzinfo=UTC)).day == 2


def test_only_due_jobs_run_and_a_late_one_runs_once(tmp_path):
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    due = {CHECK: now - dt.timedelta(hours=3), SWEEP: now + dt.timedelta(minutes=1)}
    ran = []
    run_due(due, now=now, runner=lambda job: ran.append(job.name) or 0, state_file=tmp_path / "s.json")
    assert ran == ["clerk_check"]
    assert due[CHECK] == now + dt.timedelta(minutes=5)


def test_a_failed_run_is_logged_and_unhealthy_until_the_job_succeeds(tmp_path, capsys):
    state = tmp_path / "s.json"
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    run_due({CHECK: now}, now=now, runner=lambda job: 2, state_file=state)
    assert '"level": "ERROR", "job": "clerk_check", "exit": 2' in capsys.readouterr().out
    assert not healthy(state)
    run_due({CHECK: now}, now=now, runner=lambda job: 0, state_file=state)
    assert healthy(state)


def test_the_health_command_reads_the_state_file(tmp_path, monkeypatch):
    state = tmp_path / "s.json"
    monkeypatch.setattr(scheduler, "STATE_FILE", state)
    assert scheduler.main(["--health"]) == 0  # nothing ran yet
    state.write_text('{"prune_history": 1}')
    assert scheduler.main(["--health"]) == 1


def test_a_job_runs_as_a_manage_py_command():
    assert scheduler.run_job(Job(("help", "--version"), every=dt.timedelta(minutes=1))) == 0
