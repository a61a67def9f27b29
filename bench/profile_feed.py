"""Where a feed page's time goes: py-spy on the project's gunicorn worker during a walk.

    .venv/bin/python bench/profile_feed.py --pages 300         # products, limit 1000
    .venv/bin/python bench/profile_feed.py --path '/feed/products.json' --pages 1   # whole feed

Starts the project on the benchmark database (bench/seed_pg.py must have built it) with ONE
gunicorn worker (so every request lands in the profiled process), samples it with py-spy while
walking --pages pages, then prints the functions with the most inclusive and self time, and
writes the collapsed stacks (bench/out/profile-*/stacks.txt, for speedscope or flamegraph.pl).

py-spy is not a project dependency: install it anywhere (`pip install --target /tmp/pyspy
py-spy`) and pass --py-spy /tmp/pyspy/bin/py-spy, or have it on PATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed_pg
from bench.harness import (
    OUT,
    Client,
    Processes,
    gunicorn_config,
    log,
    server_env,
    start_fake_clerk,
    start_gunicorn,
)

TOKEN = "bench-importer-token"


def summarise(stacks_path: Path, top: int) -> str:
    """Inclusive and self sample shares per function from py-spy's collapsed stacks."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in stacks_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive  self   function (file:line)"]
    for frame, n in inclusive.most_common(top):
        lines.append(f"{100 * n / total:6.1f}%  {100 * own[frame] / total:5.1f}%  {frame}")
    lines += ["", "top self time:"]
    for frame, n in own.most_common(top):
        lines.append(f"{100 * n / total:6.1f}%  {frame}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)"; keep the repo-relative path.
    # The line number is dropped so that one function is one entry.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile a feed walk with py-spy.")
    parser.add_argument("--database-url", default=seed_pg.DEFAULT_URLS["bench"])
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--path", default="/feed/products.json?limit={limit}&offset={offset}")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="first offset of the walk")
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy")
    args = parser.parse_args(argv)
    if not Path(args.py_spy).exists():
        parser.error(f"py-spy not found at {args.py_spy} (see the module docstring)")

    run_dir = OUT / f"profile-{dt.datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    stacks = run_dir / "stacks.txt"
    with Processes() as procs:
        clerk_url = start_fake_clerk(procs, [TOKEN], run_dir)
        conf, _ = gunicorn_config(run_dir)
        env = server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=clerk_url)
        server = start_gunicorn(procs, "project", "clerkfeeds.wsgi:application", env, run_dir, config=conf, workers=1)
        client = Client(server.base_url, headers={"X-Clerk-Authorization": f"Bearer {TOKEN}"}, timeout=600)
        client.get(args.path.format(limit=args.limit, offset=0))  # warm
        (worker,) = server.workers()
        spy = subprocess.Popen(
            [
                args.py_spy,
                "record",
                "--pid",
                str(worker),
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--output",
                str(stacks),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            time.sleep(1.0)
            started = time.perf_counter()
            seconds = []
            objects = 0
            for page in range(args.pages):
                r = client.get(args.path.format(limit=args.limit, offset=args.start + page * args.limit))
                seconds.append(r.seconds)
                n = len(orjson.loads(r.body)) if r.body.startswith(b"[") else 0
                objects += n
                if r.status != 200 or (not n and "limit" in args.path):
                    break
            wall = time.perf_counter() - started
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
    seconds.sort()
    log(
        f"{len(seconds)} requests, {objects:,} objects in {wall:.1f}s; median request {1000 * seconds[len(seconds) // 2]:.1f} ms"
    )
    summary = summarise(stacks, args.top) if stacks.exists() else "py-spy wrote nothing"
    (run_dir / "summary.txt").write_text(summary + "\n")
    print(summary)
    log(f"stacks in {stacks.relative_to(OUT.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
