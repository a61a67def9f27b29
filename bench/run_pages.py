"""Page costs per feed at any depth, cold, warm and retried: products, customers, orders.

    .venv/bin/python bench/run_pages.py --database-url postgres://…/clerkfeeds_bench_16

Starts the project (gunicorn, the project's gunicorn.conf.py, 2 workers, Redis --cache-url,
flushed between measures: own that db) on the bench shop (bench/seed_pg.py) and, per feed:
- walks it like Clerk's importer (offset += limit until `[]`): warm page median and p99, the
  walk's ids (every id once, ascending: "exact");
- the first page and a cold page (cache flushed, one request) at ~50% and ~95% depth, median
  of --samples, with the ids compared to the walk's page at that offset;
- a retried page: within a walk, the page at ~50% depth asked a second time (its cursor was
  released by the first answer), rows compared with the first answer;
- a walk advancing by rows served (offset += len(page)): pages, rows served twice, time.
Prints a Markdown table of ratios to the first page and to products; raw figures in bench/out/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed_pg
from bench.harness import (
    OUT,
    Client,
    Processes,
    gunicorn_config,
    log,
    machine_description,
    median,
    percentile,
    server_env,
    start_fake_clerk,
    start_gunicorn,
)

TOKEN = "bench-importer-token"
FEEDS = ("products", "customers", "orders")


class Bench:
    def __init__(self, client: Client, cache: redis.Redis, limit: int) -> None:
        self.client = client
        self.cache = cache
        self.limit = limit

    def page(self, feed: str, offset: int) -> tuple[list[int], float]:
        r = self.client.get(f"/feed/{feed}.json?limit={self.limit}&offset={offset}")
        if r.status != 200:
            raise RuntimeError(f"{feed} at {offset}: HTTP {r.status} {r.body[:200]!r}")
        return [obj["id"] for obj in orjson.loads(r.body)], r.seconds

    def cold(self) -> None:
        self.cache.flushdb()
        warm = self.client.get("/feed/categories.json?limit=1")  # the token verified again
        if warm.status != 200:
            raise RuntimeError(f"categories answered {warm.status}")

    def walk(self, feed: str, *, by_served: bool = False, retry_at: int | None = None) -> dict:
        self.cold()
        offset, ids, seconds, retried = 0, [], [], None
        started = time.perf_counter()
        while True:
            page, s = self.page(feed, offset)
            seconds.append(s)
            if retried is None and retry_at is not None and offset >= retry_at and page:
                again, s2 = self.page(feed, offset)
                retried = {"offset": offset, "ms": 1000 * s2, "first_ms": 1000 * s, "same_rows": again == page}
            if not page:
                break
            ids.extend(page)
            offset += len(page) if by_served else self.limit
        wall = time.perf_counter() - started
        unique = len(set(ids))
        return {
            "wall_s": wall,
            "pages": len(seconds),
            "rows": len(ids),
            "served_twice": len(ids) - unique,
            "ascending": all(a < b for a, b in zip(ids, ids[1:], strict=False)),
            "page_ms_median": 1000 * median(seconds),
            "page_ms_p99": 1000 * percentile(seconds, 99),
            "retried": retried,
            "ids": ids,
        }

    def single(self, feed: str, offset: int, samples: int) -> tuple[float, list[int]]:
        times, page = [], []
        for _ in range(samples):
            self.cold()
            page, s = self.page(feed, offset)
            times.append(s)
        return 1000 * median(times), page


def measure(bench: Bench, feed: str, samples: int) -> dict:
    limit = bench.limit
    log(f"{feed}: walk")
    walk = bench.walk(feed)
    ids = walk.pop("ids")
    n = len(ids)
    half, deep = (int(n * f) // limit * limit for f in (0.5, 0.95))
    result = {"rows": n, "walk": walk}
    first_ms, _ = bench.single(feed, 0, samples)
    result["first_ms"] = first_ms
    for name, offset in (("cold_50", half), ("cold_95", deep)):
        log(f"{feed}: cold page at {offset:,}")
        t, page = bench.single(feed, offset, samples)
        expected = ids[offset : offset + limit]
        result[name] = {
            "offset": offset,
            "ms": t,
            "same_rows_as_walk": page == expected,
            "starts_early_by": (offset - ids.index(page[0])) if page and page[0] in ids else None,
        }
    log(f"{feed}: retried page within a walk at {half:,}")
    retry_walk = bench.walk(feed, retry_at=half)
    result["retried"] = retry_walk["retried"]
    log(f"{feed}: walk advancing by rows served")
    served = bench.walk(feed, by_served=True)
    served_ids = served.pop("ids")
    served["exact"] = served_ids == ids
    result["by_served"] = served
    return result


def report(results: dict) -> str:
    rows = [
        "| measure | " + " | ".join(results["feeds"]) + " |",
        "|---|" + "---|" * len(results["feeds"]),
    ]

    def line(label, fn):
        cells = []
        for feed in results["feeds"]:
            try:
                cells.append(fn(results[feed]))
            except (KeyError, TypeError):
                cells.append("–")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    line("rows in the feed", lambda r: f"{r['rows']:,}")
    line("first page (cold cache)", lambda r: f"{r['first_ms']:.1f} ms")
    line(
        "page in a walk, median (p99)",
        lambda r: f"{r['walk']['page_ms_median']:.1f} ms ({r['walk']['page_ms_p99']:.0f})",
    )
    for key, label in (("cold_50", "~50%"), ("cold_95", "~95%")):
        line(
            f"cold page at {label} depth (× first page)",
            lambda r, k=key: (
                f"{r[k]['ms']:.1f} ms ({r[k]['ms'] / r['first_ms']:.2f}×)"
                + ("" if r[k]["same_rows_as_walk"] else f", starts {r[k]['starts_early_by']} rows early")
            ),
        )
    line(
        "retried page (× first page)",
        lambda r: (
            f"{r['retried']['ms']:.1f} ms ({r['retried']['ms'] / r['first_ms']:.2f}×), "
            + ("same rows" if r["retried"]["same_rows"] else "other rows")
        ),
    )
    line(
        "walk advancing by rows served",
        lambda r: (
            "exact"
            if r["by_served"]["exact"]
            else f"{r['by_served']['served_twice']:,} rows served twice, {r['by_served']['pages']} pages"
        ),
    )
    line("walk, wall", lambda r: f"{r['walk']['wall_s']:.1f} s, {r['walk']['pages']} pages")
    if "products" in results:
        p = results["products"]
        line("page in a walk ÷ products", lambda r: f"{r['walk']['page_ms_median'] / p['walk']['page_ms_median']:.2f}×")
        line(
            "cold page at ~95% ÷ products",
            lambda r: f"{r['cold_95']['ms'] / p['cold_95']['ms']:.2f}×",
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Page costs per feed (see the module docstring).")
    parser.add_argument("--database-url", default=seed_pg.DEFAULT_URLS["bench"])
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/7", help="Redis db flushed (own it!)")
    parser.add_argument("--feeds", default=",".join(FEEDS))
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--label", default="", help="a word for the output directory")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = OUT / f"pages-{stamp}{'-' + args.label if args.label else ''}"
    run_dir.mkdir(parents=True, exist_ok=True)
    feeds = [f for f in args.feeds.split(",") if f]
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_description(),
        "command": "bench/run_pages.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "feeds": feeds,
    }
    with Processes() as procs:
        clerk_url = start_fake_clerk(procs, [TOKEN], run_dir)
        conf, _ = gunicorn_config(run_dir)
        env = server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=clerk_url)
        server = start_gunicorn(procs, "project", "clerkfeeds.wsgi:application", env, run_dir, config=conf)
        client = Client(server.base_url, headers={"X-Clerk-Authorization": f"Bearer {TOKEN}"}, timeout=600)
        bench = Bench(client, redis.Redis.from_url(args.cache_url), args.limit)
        for _ in range(3):
            bench.page("products", 0)
        for feed in feeds:
            results[feed] = measure(bench, feed, args.samples)
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = report(results)
    (run_dir / "table.md").write_text(table + "\n")
    print(f"\n{results['date']} · {results['machine']}\n\n{table}")
    log(f"raw figures in {run_dir}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
