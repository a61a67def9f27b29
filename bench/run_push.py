"""Push benchmark: the project's pushes against a naive peer and a bare limit, in one run.

    .venv/bin/python bench/run_push.py --database-url postgres://postgres@127.0.0.1:5432/clerkfeeds_bench_14

On the PostgreSQL bench shop (bench/seed_pg.py: 1,000,000 products), migrated first:

1. **Import.** The products are exported as NDJSON (`export_feed`, once) and a copy with 1% of
   them changed (every 100th price) is written. Then, each a fresh `import_shop --type products`
   process: the original (so the shop equals the file), the changed file with `CLERK_PUSH=off`
   (timed), the original again (back), the changed file with `CLERK_PUSH=catalogue` (timed; it
   queues 10,000 pushes), --rounds times (2: the machine is shared). Ratio: median on / off.
2. **Delivery.** A fake Clerk on loopback (in this process) and the `clerk_sync --loop` worker
   (a process, `CLERK_PUSH=catalogue`, no sweep): the 10,000 pushes are delivered; each product
   must reach the fake exactly once. Rate: objects after the first call / time from the first
   call to the last; the worker's peak RSS (VmHWM). Against a **naive peer** (one `POST` per
   changed object, rendered on its own, as a per-save observer does; 2,000 objects) and a
   **bare limit** (the same 10,000 objects' bytes, pre-rendered, posted 100 a call; no database).
3. **Latency.** With the worker still running at its default poll interval (10 s), 1,000
   single-product edits as the admin makes them (a `save()` in a transaction), --edit-rate per
   second; latency = the fake's arrival time of the product - the edit's commit time: median, p99.

Prints a Markdown table and the ratios; writes the raw figures to bench/out/. Every process it
starts is stopped on exit, on error and on SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    BENCH_PUBLIC_KEY,
    OUT,
    PYTHON,
    REPO,
    Processes,
    log,
    machine_description,
    median,
    percentile,
    proc_status_kb,
    server_env,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/clerkfeeds_bench_14"
DEFAULT_CACHE = "redis://127.0.0.1:6379/8"


def manage(env: dict[str, str], *args: str, log_path: Path | None = None) -> tuple[float, str]:
    """Run a manage.py command to its end; (wall seconds, stdout)."""
    started = time.monotonic()
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if log_path is not None:
        log_path.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr[-20000:])
    if done.returncode not in (0,):
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def changed_copy(source: Path, target: Path, *, every: int) -> list[int]:
    """Copy NDJSON `source` to `target` with every `every`-th product's price raised by 1."""
    changed: list[int] = []
    with source.open("rb") as src, target.open("wb") as out:
        for n, line in enumerate(src):
            if n % every == every - 1:
                obj = orjson.loads(line)
                obj["price"] = round(float(obj["price"]) + 1, 2)
                changed.append(obj["id"])
                line = orjson.dumps(obj) + b"\n"
            out.write(line)
    return changed


def wait_for(condition, *, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Push benchmark (see the module docstring).")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--cache-url", default=DEFAULT_CACHE)
    parser.add_argument("--share", type=int, default=100, help="one product in SHARE is changed (default 100: 1%%)")
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--edit-rate", type=float, default=20.0, help="edits per second")
    parser.add_argument("--peer-objects", type=int, default=2000)
    parser.add_argument("--skip-import", action="store_true", help="deliver pushes already queued")
    parser.add_argument("--rounds", type=int, default=2, help="off/on import pairs (median of each)")
    parser.add_argument(
        "--only-push-step", action="store_true", help="measure only the import's push step (what push adds)"
    )
    args = parser.parse_args()

    run_dir = OUT / f"push-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    run_dir.mkdir(parents=True, exist_ok=True)
    figures: dict = {"machine": machine_description(), "args": vars(args)}

    from clerk.fake import FakeClerk

    fake = FakeClerk(public_key=BENCH_PUBLIC_KEY).start()
    env = server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=fake.url)
    env.update(CLERK_PUSH="catalogue", DJANGO_LOG_LEVEL="WARNING")
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DJANGO_", "CLERK_", "DATABASE_", "CACHE_"))})
    os.environ["DJANGO_SETTINGS_MODULE"] = "clerkfeeds.settings"
    import django

    django.setup()
    from django.db import connection, transaction

    from clerk.client import get_client
    from clerk.hooks import rendered
    from clerk.models import Action, ClerkDeletion, Status
    from shop.models import Product

    log("migrating the bench database")
    manage(env, "migrate", "--noinput")
    if args.only_push_step:
        figures["push_step"] = push_step(Product, ClerkDeletion, Action, changed=1_000_000 // args.share)
        print(json.dumps(figures["push_step"]))
        (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
        return

    # --- 1. the import -----------------------------------------------------------------------
    original = OUT / "push-products.ndjson"
    changed_file = run_dir / "products-changed.ndjson"
    if not args.skip_import:
        if not original.exists():
            log("exporting the products (once)")
            manage(env, "export_feed", "products", "--format", "ndjson", "--out", str(original), "--mode", "644")
        changed = changed_copy(original, changed_file, every=args.share)
        figures["changed"] = len(changed)
        imports: dict[str, dict] = {}
        plan = [("equalise", original, "off")]
        for r in range(1, args.rounds + 1):
            plan += [
                (f"{r}: changed, push off", changed_file, "off"),
                (f"{r}: back", original, "off"),
                (f"{r}: changed, push catalogue", changed_file, "catalogue"),
            ]
            if r < args.rounds:
                plan.append((f"{r}: back again", original, "off"))
        for label, path, push in plan:
            if label.endswith("catalogue"):
                ClerkDeletion.objects.filter(action=Action.PUSH).delete()
            log(f"import_shop: {label}")
            seconds, out = manage(
                {**env, "CLERK_PUSH": push},
                "import_shop",
                str(path),
                "--type",
                "products",
                "--batch-size",
                "2000",
                log_path=run_dir / f"import-{label.replace(' ', '_').replace(',', '').replace(':', '')}.log",
            )
            imports[label] = {"seconds": round(seconds, 1), "output": out.strip().splitlines()}
            log(f"  {seconds:.1f} s: {' | '.join(out.strip().splitlines())}")
        figures["imports"] = imports
        off = [v["seconds"] for k, v in imports.items() if k.endswith("push off")]
        on = [v["seconds"] for k, v in imports.items() if k.endswith("push catalogue")]
        figures["import_off_s"], figures["import_on_s"] = median(off), median(on)
        figures["import_ratio"] = round(median(on) / median(off), 3)
        figures["import_pair_ratios"] = [round(b / a, 3) for a, b in zip(off, on, strict=True)]
    pending = ClerkDeletion.objects.filter(action=Action.PUSH, status=Status.PENDING)
    queued_ids = set(pending.values_list("object_id", flat=True))
    figures["queued"] = len(queued_ids)
    log(f"{len(queued_ids)} pushes pending")

    # --- 2. delivery ---------------------------------------------------------------------------
    with Processes() as procs:
        fake.reset()
        worker = procs.start(
            "worker",
            [PYTHON, "manage.py", "clerk_sync", "--loop", "--sweep-every", "0"],
            env=env,
            log_path=run_dir / "worker.log",
        )
        started = time.monotonic()
        wait_for(lambda: not pending.exists(), timeout=600, what="the pushes to be delivered", every=0.1)
        wall = time.monotonic() - started
        calls = fake.calls("/products", "POST")
        got = Counter(o["id"] for c in calls for o in c.body["products"])
        assert set(got) == queued_ids, "the fake did not get every queued product"
        twice = [i for i, n in got.items() if n > 1]
        assert not twice, f"{len(twice)} products pushed more than once"
        span = calls[-1].at - calls[0].at
        rate = (len(queued_ids) - len(calls[0].body["products"])) / span if span > 0 else None
        figures["delivery"] = {
            "objects": len(queued_ids),
            "calls": len(calls),
            "exactly_once": True,
            "first_to_last_call_s": round(span, 2),
            "objects_per_s": round(rate, 0) if rate else None,
            "wall_from_worker_start_s": round(wall, 2),
            "failed": ClerkDeletion.objects.filter(action=Action.PUSH, status=Status.FAILED).count(),
        }
        log(f"delivered {len(queued_ids)} in {len(calls)} calls, {rate:.0f} objects/s (first to last call)")

        # --- 3. latency ------------------------------------------------------------------------
        fake.reset()
        rng = random.Random(14)
        ids = rng.sample(list(Product.objects.order_by().values_list("pk", flat=True)), args.edits)
        committed: dict[int, float] = {}
        gap = 1 / args.edit_rate
        next_at = time.monotonic()
        for pk in ids:
            with transaction.atomic():
                product = Product.objects.select_for_update().get(pk=pk)
                product.price = product.price + 1
                product.save()
            committed[pk] = time.time()
            next_at += gap
            time.sleep(max(0.0, next_at - time.monotonic()))
        wait_for(lambda: not pending.exists(), timeout=300, what="the edits to be delivered", every=0.2)
        arrival: dict[int, float] = {}
        for call in fake.calls("/products", "POST"):
            for obj in call.body["products"]:
                if obj["id"] in committed and call.at >= committed[obj["id"]]:
                    arrival.setdefault(obj["id"], call.at)
        missing = set(committed) - set(arrival)
        assert not missing, f"{len(missing)} edits never reached the fake"
        latencies = [arrival[i] - committed[i] for i in committed]
        figures["latency"] = {
            "edits": len(latencies),
            "edit_rate_per_s": args.edit_rate,
            "median_s": round(median(latencies), 2),
            "p99_s": round(percentile(latencies, 99), 2),
            "max_s": round(max(latencies), 2),
            "poll_interval_s": 10,
        }
        log(f"latency median {figures['latency']['median_s']} s, p99 {figures['latency']['p99_s']} s")
        figures["worker_peak_rss_mb"] = round((proc_status_kb(worker.pid, "VmHWM") or 0) / 1024, 1)

    # --- the naive peer and the bare limit -------------------------------------------------------
    client = get_client()
    sample = sorted(queued_ids)[: args.peer_objects] if queued_ids else list(range(1, args.peer_objects + 1))
    fake.reset()
    started = time.monotonic()
    for pk in sample:  # one render and one call per saved object, as a per-save observer does
        payload = rendered("products", [pk], now=dt.datetime.now(dt.UTC))
        client.upsert_encoded("products", [payload[pk]])
    peer = len(sample) / (time.monotonic() - started)
    ids = sorted(queued_ids) or list(range(1, 10001))
    payloads: dict[int, bytes] = {}
    for i in range(0, len(ids), 1000):
        payloads.update(rendered("products", ids[i : i + 1000], now=dt.datetime.now(dt.UTC)))
    started = time.monotonic()
    for i in range(0, len(ids), 100):
        client.upsert_encoded("products", [payloads[pk] for pk in ids[i : i + 100]])
    bare = len(ids) / (time.monotonic() - started)
    figures["peer_objects_per_s"] = round(peer, 0)
    figures["bare_objects_per_s"] = round(bare, 0)
    figures["push_step"] = push_step(Product, ClerkDeletion, Action, changed=1_000_000 // args.share)
    connection.close()
    fake.stop()

    report(figures)
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    log(f"raw figures: {run_dir / 'figures.json'}")


def push_step(Product, ClerkDeletion, Action, *, changed: int) -> dict:
    """What push adds to an import, timed alone (the imports' own times swing with the shared
    machine's load): collecting `changed` ids batch by batch, then the end-of-run decision (one
    count of the table) and queueing them; the rows are removed afterwards."""
    from clerk.outbox import import_pushes, queue_pushes

    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True)[:: max(1, 1_000_000 // changed)])
    ids = ids[:changed]
    ClerkDeletion.objects.filter(action=Action.PUSH).delete()
    started = time.monotonic()
    with import_pushes() as run:
        for i in range(0, len(ids), 2000):  # as the writers report each batch of 2,000
            queue_pushes(object_type="products", ids=ids[i : i + 2000])
        collected = time.monotonic()
    seconds = time.monotonic() - started
    queued = ClerkDeletion.objects.filter(action=Action.PUSH).count()
    ClerkDeletion.objects.filter(action=Action.PUSH).delete()
    return {
        "ids": len(ids),
        "queued": queued,
        "collect_s": round(collected - started, 3),
        "total_s": round(seconds, 2),
        "lines": run.lines,
    }


def report(f: dict) -> None:
    lines = ["| measure | project | peer | bare | ratio |", "|---|---|---|---|---|"]
    if "imports" in f:
        lines.append(
            f"| re-import, 1,000,000 products, {f['changed']:,} changed (median of {len(f['import_pair_ratios'])}) | "
            f"{f['import_on_s']} s (push) | {f['import_off_s']} s (push off) | | "
            f"{f['import_ratio']}x (pairs {f['import_pair_ratios']}; target <= 1.15x) |"
        )
    d = f["delivery"]
    lines.append(
        f"| delivery of {d['objects']:,} pushes, each exactly once | {d['objects_per_s']:,.0f} objects/s "
        f"({d['calls']} calls) | {f['peer_objects_per_s']:,.0f} objects/s (one call each) | "
        f"{f['bare_objects_per_s']:,.0f} objects/s | {d['objects_per_s'] / f['bare_objects_per_s']:.2f} of bare, "
        f"{d['objects_per_s'] / f['peer_objects_per_s']:.1f}x peer (target >= 2,000/s) |"
    )
    lines.append(f"| worker peak RSS | {f['worker_peak_rss_mb']} MB | | | |")
    p = f["push_step"]
    lines.append(f"| what push adds to the import: collect {p['ids']:,} ids, count, queue | {p['total_s']} s | | | |")
    la = f["latency"]
    lines.append(
        f"| commit -> delivery, {la['edits']:,} edits at {la['edit_rate_per_s']:.0f}/s, poll 10 s | "
        f"median {la['median_s']} s, p99 {la['p99_s']} s, max {la['max_s']} s | | | p99 target < 15 s |"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
