"""Load test: concurrent importer walks while an import and admin consent changes run.

    .venv/bin/python bench/run_load.py                 # about 3 minutes

Against the project under gunicorn (its gunicorn.conf.py, 2 workers) with PostgreSQL (database
clerkfeeds_load: 100,000 products, 20,000 customers, 200,000 orders, rebuilt by bench/seed_pg.py
whenever an earlier run changed it) and Redis (db 8), with the fake Clerk on loopback:

- walkers: --walkers processes (default 6), each with its own token, each repeating full walks
  of one feed (products at limit 1000 and 500, orders at 1000, customers at 500) like Clerk's
  importer: offsets 0, L, 2L, … until `[]`; a fifth (orders) asks every 20th page twice and goes
  on with the second answer, a sixth (customers) advances by the rows served. Each walk takes a snapshot of the feed's ids (from
  the feed declaration's own `rows()`) just before its first page and just after its last;
- an import loop: `manage.py import_shop FILE --type products` of a batch of changed products
  (prices, names, categories of existing ids) and new ones (odd ids, in the middle of the id
  range, so a keyset walk meets inserts before and after its position), every --import-pause s;
- an admin loop: consent grants and withdrawals through `gdpr.ledger.record_consent` (source
  "admin"), several per second, and now and then a product deleted the way the admin does.

Every mutation is logged with its start and end time. A walk is exact when every id that was in
the feed at its start and at its end and was not touched by a mutation overlapping the walk
appears exactly once, and nothing appears that was never in the feed. Reported: requests per
second, p50/p99 latency per feed, HTTP statuses (any 5xx fails the run), walks exact/total.
Every loop is bounded in count and time; everything started is stopped on exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import pickle
import random
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed_pg
from bench.harness import (
    OUT,
    PYTHON,
    REPO,
    Client,
    Processes,
    gunicorn_config,
    log,
    machine_description,
    percentile,
    server_env,
    start_fake_clerk,
    start_gunicorn,
)

DEFAULT_DB = seed_pg.DEFAULT_URLS["load"]
DEFAULT_CACHE = "redis://127.0.0.1:6379/8"
# (feed, limit, how it walks): "limit" advances by the limit; "retry" also asks every 20th page
# a second time and goes on with the second answer (an importer retrying a page that timed
# out); "served" advances by the number of rows served (the last page is partial).
WALKER_FEEDS = [
    ("products", 1000, "limit"),
    ("orders", 1000, "limit"),
    ("customers", 500, "limit"),
    ("products", 500, "limit"),
    ("orders", 1000, "retry"),
    ("customers", 500, "served"),
]
RETRY_EVERY = 20


# --- Django in child processes -----------------------------------------------------------------
def django_setup(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "clerkfeeds.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("CACHE_URL", "locmemcache://load-test")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def feed_ids(feed_name: str) -> set[int]:
    """The ids the feed may show right now, from the feed declaration's own `rows()`."""
    from feeds.registry import feed_class

    feed = feed_class(feed_name)()
    return set(feed.rows().values_list(feed.pk_name(), flat=True))


# --- walkers ---------------------------------------------------------------------------------
def walker_main(
    index: int,
    feed: str,
    limit: int,
    tokens: list[str],
    base_url: str,
    database_url: str,
    stop_at: float,
    max_walks: int,
    out_path: str,
    control: bool = False,
    abort=None,
    mode: str = "limit",
) -> None:
    """Repeat full walks of `feed` until `stop_at`; pickle every walk's record to `out_path`.

    `control`: walk the naive peer's LimitOffsetPagination (plain SQL OFFSET) instead of the
    project, as a negative control: its walks are expected to skip or repeat rows.
    `tokens`: one token for every walk, or a new token (a new client identity) for each walk.
    """
    walks, requests = [], []
    error = ""
    try:
        django_setup(database_url)
        label = None if control else feed  # the control's requests are not the project's
        for n in range(max_walks):
            token = tokens[n % len(tokens)]
            client = Client(base_url, headers={"X-Clerk-Authorization": f"Bearer {token}"}, timeout=60)
            if time.time() > stop_at or (abort is not None and abort.is_set()):
                break
            t0 = time.time()
            before = feed_ids(feed)
            walked: list[int] = []
            offset, pages, complete, stopped, retries, retries_same = 0, 0, False, "", 0, 0
            max_pages = 2 * (len(before) // limit) + 20
            walk_deadline = time.time() + 600
            while pages < max_pages and time.time() < walk_deadline and not (abort and abort.is_set()):
                started = time.time()
                path = (
                    f"/peer/products/?limit={limit}&offset={offset}"
                    if control
                    else f"/feed/{feed}.json?limit={limit}&offset={offset}"
                )
                try:
                    r = client.get(path)
                except OSError as exc:
                    requests.append((started, None, 0, label))
                    stopped = f"connection error at offset {offset}: {exc}"
                    break
                requests.append((started, r.seconds, r.status, label))
                pages += 1
                if r.status != 200:
                    stopped = f"HTTP {r.status} at offset {offset}: {r.body[:200]!r}"
                    break
                items = orjson.loads(r.body)
                if control:
                    items = items["results"]
                if mode == "retry" and pages % RETRY_EVERY == 0:
                    again = client.get(path)
                    requests.append((time.time(), again.seconds, again.status, label))
                    if again.status != 200:
                        stopped = f"HTTP {again.status} at offset {offset} (retry): {again.body[:200]!r}"
                        break
                    first, items = items, orjson.loads(again.body)
                    retries += 1
                    retries_same += [i["id"] for i in items] == [i["id"] for i in first]
                if not items:
                    complete = True
                    break
                walked.extend(item["id"] for item in items)
                offset += len(items) if mode == "served" else limit
            after = feed_ids(feed)
            t1 = time.time()
            walks.append(
                {
                    "walker": index,
                    "walk": n + 1,
                    "mode": mode,
                    "retries": retries,
                    "retries_same": retries_same,
                    "control": control,
                    "feed": feed,
                    "limit": limit,
                    "t0": t0,
                    "t1": t1,
                    "pages": pages,
                    "complete": complete,
                    "stopped": stopped,
                    "before": before,
                    "after": after,
                    "walked": walked,
                }
            )
    except Exception:  # reported by the coordinator
        error = traceback.format_exc()
    with open(out_path, "wb") as f:
        pickle.dump({"walks": walks, "requests": requests, "error": error}, f)


# --- mutators --------------------------------------------------------------------------------
def product_batch(rng: random.Random, *, existing_max: int, changed: int, new: int) -> list[dict]:
    """Changed existing products (even ids) and new ones (odd ids) in the import format."""
    now = int(time.time())
    ids = rng.sample(range(2, existing_max + 1, 2), changed) + [
        2 * rng.randrange(1, existing_max // 2) + 1 for _ in range(new)
    ]
    objects = []
    for pid in sorted(set(ids)):
        objects.append(
            {
                "id": pid,
                "name": f"Load-test product {pid} v{now}",
                "description": "Changed by the load test's import loop.",
                "price": round(rng.uniform(5, 500), 2),
                "image": f"https://shop.example/img/{pid}.jpg",
                "url": f"https://shop.example/p/{pid}",
                "categories": sorted(rng.sample(range(1, 1001), rng.randint(1, 3))),
                "created_at": now - 86400 * rng.randint(1, 900),
                "updated_at": now,
                "brand": f"Brand {rng.randint(1, 50)}",
                "stock": rng.randint(0, 200),
            }
        )
    return objects


def import_loop(
    database_url: str, stop, stop_at: float, pause: float, batch: int, log_path: str, max_runs: int, run_dir: str
) -> None:
    """Run `manage.py import_shop` on a fresh batch of products until `stop` is set (at the
    latest `stop_at`)."""
    rng = random.Random(7)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "clerkfeeds.settings",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    with open(log_path, "a") as out:
        for run in range(max_runs):
            if stop.is_set() or time.time() > stop_at:
                break
            objects = product_batch(rng, existing_max=2 * 100_000, changed=batch, new=batch // 10)
            path = Path(run_dir) / f"import-{run}.json"
            path.write_bytes(orjson.dumps(objects))
            t0 = time.time()
            proc = subprocess.run(
                [PYTHON, "manage.py", "import_shop", str(path), "--type", "products"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            t1 = time.time()
            out.write(
                json.dumps(
                    {
                        "kind": "import",
                        "t0": t0,
                        "t1": t1,
                        "feed": "products",
                        "ids": [o["id"] for o in objects],
                        "rc": proc.returncode,
                        "stderr": proc.stderr[-2000:],
                        "stdout": proc.stdout[-500:],
                    }
                )
                + "\n"
            )
            out.flush()
            path.unlink()
            stop.wait(pause)


def admin_loop(
    database_url: str,
    stop,
    stop_at: float,
    rate: float,
    delete_every: int,
    log_path: str,
    customers: int,
    max_changes: int,
) -> None:
    """Consent grants/withdrawals through the ledger, and product deletions, until `stop` is set
    (at the latest `stop_at`)."""
    django_setup(database_url)
    from django.utils import timezone

    from gdpr.ledger import record_consent
    from shop.models import Product

    rng = random.Random(11)
    with open(log_path, "a") as out:
        for n in range(max_changes):
            if stop.is_set() or time.time() > stop_at:
                break
            customer = rng.randrange(1, customers + 1)
            if customer % 100 == 99:  # erased by the seed: the ledger refuses them
                customer -= 1
            purpose = rng.choice(["third_party_sharing", "third_party_sharing", "marketing"])
            granted = rng.random() < 0.5
            t0 = time.time()
            error = ""
            try:
                record_consent(
                    customer=customer,
                    purpose=purpose,
                    granted=granted,
                    at=timezone.now(),
                    source="admin",
                    evidence="load test: admin form",
                )
            except Exception as exc:  # logged, the loop goes on
                error = repr(exc)
            t1 = time.time()
            out.write(
                json.dumps(
                    {
                        "kind": "consent",
                        "t0": t0,
                        "t1": t1,
                        "feed": "customers",
                        "ids": [customer],
                        "purpose": purpose,
                        "granted": granted,
                        "error": error,
                    }
                )
                + "\n"
            )
            if delete_every and n % delete_every == delete_every - 1:
                pid = 2 * rng.randrange(1, 100_000)
                t0 = time.time()
                deleted = 0
                obj = Product.objects.filter(pk=pid).first()
                if obj is not None:
                    obj.delete()  # what the admin's delete does: signals (outbox) included
                    deleted = 1
                out.write(
                    json.dumps(
                        {
                            "kind": "delete",
                            "t0": t0,
                            "t1": time.time(),
                            "feed": "products",
                            "ids": [pid],
                            "deleted": deleted,
                        }
                    )
                    + "\n"
                )
            out.flush()
            stop.wait(rng.expovariate(rate))


# --- analysis --------------------------------------------------------------------------------
def changed_ids(walk: dict, mutations: list[dict], orders_of: dict[int, list[int]]) -> set[int]:
    """Ids of `walk`'s feed touched by a mutation whose interval overlaps the walk's."""
    touched: set[int] = set()
    for m in mutations:
        if m["t0"] > walk["t1"] or m["t1"] < walk["t0"]:
            continue
        if walk["feed"] == "products" and m["feed"] == "products":
            touched.update(m["ids"])
        elif walk["feed"] == "customers" and m["kind"] == "consent":
            touched.update(m["ids"])
        elif walk["feed"] == "orders" and m["kind"] == "consent":
            for customer in m["ids"]:
                touched.update(orders_of.get(customer, ()))
    return touched


def judge(walk: dict, touched: set[int]) -> dict:
    """The verdict on one walk (see the module docstring for "exact")."""
    before, after, walked = walk["before"], walk["after"], walk["walked"]
    counts = Counter(walked)
    stable = (before & after) - touched
    missing = stable - counts.keys()
    repeated = {i for i in stable if counts[i] > 1}
    phantom = set(counts) - (before | after | touched)
    ok = walk["complete"] and not missing and not repeated and not phantom
    return {
        "feed": walk["feed"],
        "limit": walk["limit"],
        "walker": walk["walker"],
        "walk": walk["walk"],
        "mode": walk.get("mode", "limit"),
        "retries": walk.get("retries", 0),
        "retries_same": walk.get("retries_same", 0),
        "repeated_count": len(repeated),
        "phantom_count": len(phantom),
        "seconds": round(walk["t1"] - walk["t0"], 2),
        "pages": walk["pages"],
        "objects": len(walked),
        "stable": len(stable),
        "touched": len(touched),
        "missing": sorted(missing)[:10],
        "missing_count": len(missing),
        "repeated": sorted(repeated)[:10],
        "phantom": sorted(phantom)[:10],
        "complete": walk["complete"],
        "stopped": walk["stopped"],
        "exact": ok,
    }


def orders_by_customer(database_url: str, customers: set[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    if not customers:
        return result
    with psycopg.connect(database_url) as conn:
        for order_id, customer_id in conn.execute(
            "SELECT id, customer_id FROM shop_order WHERE customer_id = ANY(%s)", (sorted(customers),)
        ):
            result.setdefault(customer_id, []).append(order_id)
    return result


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the run ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load test (see the module docstring).")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--cache-url", default=DEFAULT_CACHE)
    parser.add_argument("--walkers", type=int, default=len(WALKER_FEEDS))
    parser.add_argument("--duration", type=float, default=120, help="seconds during which walks start")
    parser.add_argument("--max-walks", type=int, default=50, help="per walker")
    parser.add_argument("--import-batch", type=int, default=500, help="changed products per import")
    parser.add_argument("--import-pause", type=float, default=2.0)
    parser.add_argument("--consent-rate", type=float, default=5.0, help="consent changes per second")
    parser.add_argument("--delete-every", type=int, default=25, help="a product deletion every N changes")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument(
        "--token-per-walk",
        action="store_true",
        help="a new token (client identity) for every walk, instead of one per walker",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="add a walker on the naive peer's OFFSET paging (a negative control: "
        "its walks should come out inexact, proving the check can fail)",
    )
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = OUT / f"load-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    scale = seed_pg.SCALES["load"]
    if not args.skip_seed:
        seed_pg.build(args.database_url, scale)
    if not list(REPO.glob("*/management/commands/import_shop.py")):
        log("manage.py import_shop does not exist yet: no import loop can run")
        return 2

    per_walker = args.max_walks if args.token_per_walk else 1
    tokens = [[f"load-token-{i + 1}-{n + 1}" for n in range(per_walker)] for i in range(args.walkers)]
    ctx = mp.get_context("spawn")
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_description(),
        "command": "bench/run_load.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "token_per_walk": args.token_per_walk,
        "data": {"products": scale.products, "customers": scale.customers, "orders": scale.orders},
    }
    import_log, admin_log = run_dir / "imports.jsonl", run_dir / "admin.jsonl"
    children: list[mp.Process] = []
    with Processes() as procs:
        clerk_url = start_fake_clerk(procs, [t for ts in tokens for t in ts], run_dir)
        conf, conf_text = gunicorn_config(run_dir)
        results["gunicorn"] = conf_text + ", 2 workers"
        env = server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=clerk_url)
        import redis

        redis.Redis.from_url(args.cache_url).flushdb()
        server = start_gunicorn(procs, "project", "clerkfeeds.wsgi:application", env, run_dir, config=conf)
        probe = Client(server.base_url, headers={"X-Clerk-Authorization": f"Bearer {tokens[0][0]}"}).get(
            "/feed/products.json?limit=1"
        )
        if probe.status != 200:
            log(f"the products feed answered {probe.status}: {probe.body[:300]!r}")
            return 2
        try:
            started = time.time()
            stop_at = started + args.duration
            # The mutators run until the last walk ends (bounded: the walks' own bound + a margin).
            stop, abort = ctx.Event(), ctx.Event()
            mut_stop = stop_at + 900
            children.append(
                ctx.Process(
                    target=import_loop,
                    name="import",
                    args=(
                        args.database_url,
                        stop,
                        mut_stop,
                        args.import_pause,
                        args.import_batch,
                        str(import_log),
                        1000,
                        str(run_dir),
                    ),
                )
            )
            children.append(
                ctx.Process(
                    target=admin_loop,
                    name="admin",
                    args=(
                        args.database_url,
                        stop,
                        mut_stop,
                        args.consent_rate,
                        args.delete_every,
                        str(admin_log),
                        scale.customers,
                        100_000,
                    ),
                )
            )
            walker_outs = []
            for i in range(args.walkers):
                feed, limit, mode = WALKER_FEEDS[i % len(WALKER_FEEDS)]
                out_path = run_dir / f"walker-{i + 1}.pickle"
                walker_outs.append(out_path)
                children.append(
                    ctx.Process(
                        target=walker_main,
                        name=f"walker-{i + 1}",
                        args=(
                            i + 1,
                            feed,
                            limit,
                            tokens[i],
                            server.base_url,
                            args.database_url,
                            stop_at,
                            args.max_walks,
                            str(out_path),
                            False,
                            abort,
                            mode,
                        ),
                    )
                )
            if args.control:
                peer_env = dict(env, DJANGO_SETTINGS_MODULE="bench.peer.settings")
                peer = start_gunicorn(procs, "peer", "clerkfeeds.wsgi:application", peer_env, run_dir, config=conf)
                out_path = run_dir / "walker-control.pickle"
                walker_outs.append(out_path)
                children.append(
                    ctx.Process(
                        target=walker_main,
                        name="walker-control",
                        args=(
                            0,
                            "products",
                            1000,
                            [""],
                            peer.base_url,
                            args.database_url,
                            stop_at,
                            args.max_walks,
                            str(out_path),
                            True,
                            abort,
                        ),
                    )
                )
            for child in children:
                child.start()
            log(f"{args.walkers} walkers, an import loop and an admin loop running for ~{args.duration:.0f}s …")
            walkers = children[2:]
            for child in walkers:
                child.join(timeout=max(1.0, stop_at + 700 - time.time()))
            walk_end = time.time()
        except BaseException:
            if children:
                abort.set()  # interrupted or failed: the walkers stop at their next page
            raise
        finally:
            if children:
                stop.set()
            for child in children:
                # An import in flight finishes (its own timeout bounds it); then the loop ends.
                child.join(timeout=120)
                if child.is_alive():
                    child.terminate()
                    child.join(timeout=10)

    # --- analysis ----------------------------------------------------------------------------
    mutations = read_jsonl(import_log) + read_jsonl(admin_log)
    walks, requests, errors = [], [], []
    for path in walker_outs:
        if not path.exists():
            errors.append(f"{path.name}: no output (walker died)")
            continue
        data = pickle.loads(path.read_bytes())
        walks += data["walks"]
        requests += data["requests"]
        if data["error"]:
            errors.append(data["error"])
    imports = [m for m in mutations if m["kind"] == "import"]
    consents = [m for m in mutations if m["kind"] == "consent"]
    deletes = [m for m in mutations if m["kind"] == "delete"]
    consent_customers = {c for m in consents for c in m["ids"]}
    orders_of = orders_by_customer(args.database_url, consent_customers)
    verdicts = [judge(w, changed_ids(w, mutations, orders_of)) for w in walks if not w["control"]]
    control = [judge(w, changed_ids(w, mutations, orders_of)) for w in walks if w["control"]]
    requests = [r for r in requests if r[3] is not None]
    statuses = Counter(str(s) for _, _, s, _ in requests)
    latencies = [s for _, s, status, _ in requests if s is not None]
    first = min((t for t, _, _, _ in requests), default=started)
    span = max(walk_end - first, 1e-9)
    per_feed = {}
    for feed in sorted({f for *_, f in requests}):
        lat = [s for _, s, _, f in requests if f == feed and s is not None]
        per_feed[feed] = {
            "requests": len(lat),
            "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99),
        }
    results.update(
        {
            "seconds": round(span, 1),
            "requests": len(requests),
            "rps": len(requests) / span,
            "objects_per_second": sum(v["objects"] for v in verdicts) / span,
            "import_run_p50_s": percentile([m["t1"] - m["t0"] for m in imports], 50),
            "p50_ms": 1000 * (percentile(latencies, 50) or 0),
            "p99_ms": 1000 * (percentile(latencies, 99) or 0),
            "statuses": dict(statuses),
            "server_errors": sum(n for s, n in statuses.items() if s.startswith("5") or s == "0"),
            "per_feed": per_feed,
            "walks": len(verdicts),
            "walks_exact": sum(v["exact"] for v in verdicts),
            "walks_by_feed": dict(Counter(f"{v['feed']}@{v['limit']}" for v in verdicts)),
            "walks_with_skips": sum(1 for v in verdicts if v["missing_count"]),
            "walks_with_repeats": sum(1 for v in verdicts if v["repeated_count"]),
            "walks_with_phantoms": sum(1 for v in verdicts if v["phantom_count"]),
            "walks_incomplete": sum(1 for v in verdicts if not v["complete"]),
            "first_walks_exact": f"{sum(v['exact'] for v in verdicts if v['walk'] == 1)} / "
            f"{sum(1 for v in verdicts if v['walk'] == 1)}",
            "repeats_by_walk": {
                f"{v['feed']}@{v['limit']}#{v['walk']}": v["repeated_count"] for v in verdicts if v["repeated_count"]
            },
            "imports": len(imports),
            "imports_failed": sum(1 for m in imports if m["rc"] != 0),
            "imported_products": sum(len(m["ids"]) for m in imports),
            "consent_changes": len(consents),
            "consent_errors": sum(1 for m in consents if m["error"]),
            "products_deleted": sum(m["deleted"] for m in deletes),
            "errors": errors,
            "verdicts": verdicts,
            "control_walks": len(control),
            "control_inexact": sum(not v["exact"] for v in control),
            "control_verdicts": control,
        }
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    failed_imports = [m for m in imports if m["rc"] != 0][:2]
    for m in failed_imports:
        log(f"import failed (rc {m['rc']}): {m['stderr'][-800:]}")
    for e in errors:
        log(f"walker error: {e}")
    for v in verdicts:
        if not v["exact"]:
            log(
                f"inexact walk: {v['feed']}@{v['limit']} walker {v['walker']} walk {v['walk']}: "
                f"{v['missing_count']} skipped, {v['repeated_count']} repeated (e.g. {v['repeated'][:5]}), "
                f"{v['phantom_count']} phantom, complete={v['complete']} {v['stopped']}"
            )
    print(report(results))
    log(f"raw figures in {run_dir.relative_to(REPO)}/results.json")
    ok = (
        results["server_errors"] == 0 and results["walks_exact"] == results["walks"] and not errors and results["walks"]
    )
    return 0 if ok else 1


def report(r: dict) -> str:
    lines = [
        f"{r['date']} · {r['machine']} · {r['gunicorn']} · {r['data']['products']:,} products, "
        f"{r['data']['customers']:,} customers, {r['data']['orders']:,} orders",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests (all walkers) | {r['requests']:,} in {r['seconds']:.0f} s |",
        f"| requests per second | {r['rps']:.1f} ({r['objects_per_second']:,.0f} objects/s) |",
        f"| latency p50 / p99, all pages (ms) | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} |",
    ]
    for feed, f in r["per_feed"].items():
        lines.append(
            f"| latency p50 / p99, {feed} pages (ms) | {f['p50_ms']:.0f} / {f['p99_ms']:.0f} ({f['requests']:,} requests) |"
        )
    lines += [
        f"| HTTP statuses | {', '.join(f'{s}: {n:,}' for s, n in sorted(r['statuses'].items()))} |",
        f"| 5xx or connection errors | {r['server_errors']} |",
        f"| walks exact / walks | {r['walks_exact']} / {r['walks']} ({', '.join(f'{k}: {n}' for k, n in sorted(r['walks_by_feed'].items()))}); "
        f"identity: {'a new token per walk' if r['token_per_walk'] else 'one token per walker, reused by its walks'} |",
        f"| walks with skipped / repeated / phantom rows; incomplete | {r['walks_with_skips']} / {r['walks_with_repeats']} / "
        f"{r['walks_with_phantoms']}; {r['walks_incomplete']} |",
        f"| first walk of each walker exact | {r['first_walks_exact']} |",
        *(
            f"| walks that {label} exact / walks | "
            f"{sum(v['exact'] for v in r['verdicts'] if v['mode'] == mode)} / "
            f"{sum(v['mode'] == mode for v in r['verdicts'])}"
            + (
                f"; retried pages with the same rows: {sum(v['retries_same'] for v in r['verdicts'] if v['mode'] == mode)}"
                f" / {sum(v['retries'] for v in r['verdicts'] if v['mode'] == mode)}"
                if mode == "retry"
                else ""
            )
            + " |"
            for mode, label in (("retry", f"retry 1 page in {RETRY_EVERY}"), ("served", "advance by rows served"))
            if any(v["mode"] == mode for v in r.get("verdicts", []))
        ),
        *(
            [
                f"| negative control: walks of the naive peer's OFFSET paging that were inexact | "
                f"{r['control_inexact']} / {r['control_walks']} |"
            ]
            if r.get("control_walks")
            else []
        ),
        f"| concurrent imports (import_shop runs, products) | {r['imports']} runs ({r['imports_failed']} failed), "
        f"{r['imported_products']:,} products, median run {r['import_run_p50_s'] or 0:.1f} s |",
        f"| concurrent consent changes (ledger) / product deletions | {r['consent_changes']:,} ({r['consent_errors']} refused) / {r['products_deleted']} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
