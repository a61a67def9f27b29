"""Feeds benchmark: the project against a naive DRF peer and a bare WSGI limit, in one run.

    .venv/bin/python bench/run_feeds.py            # everything (builds the data on first run)

1. Builds (or finds) 1,000,000 products, 1,000 categories, 2,000,000 orders on PostgreSQL
   (bench/seed_pg.py, database clerkfeeds_bench), and starts the project's fake Clerk on loopback.
2. For each server (the bare WSGI app, the project, the DRF peer), one at a time, under the same
   gunicorn settings (2 workers, DJANGO_DEBUG=0, Redis cache db 7, X-Forwarded-Proto: https):
   - latency of a 1,000-row page at offsets 0, 500,000 and 990,000 (median of --samples);
     for the project "cold" (cache flushed: a single request at that offset, no walk before it)
     and "warm" (the same pages reached within a full walk);
   - the wall time of a full importer crawl with limit 1,000 (offset 0, 1000, … until `[]`; the
     bare app takes the last id seen instead of the offset), median of --walks walks, each
     checked: every product exactly once, in id order. The peer's crawl is estimated from
     every --peer-every'th page (or run in full with --peer-crawl full, bounded by --peer-timeout);
   - peak RSS per worker (VmHWM), and for the project also while streaming the whole
     1,000,000-product feed without `limit` (bytes and objects counted while streaming).
3. Prints a Markdown table and the ratios, and writes all raw figures to bench/out/.

Every server and the fake Clerk are stopped on exit, on error and on SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import ijson
import orjson
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed_pg  # noqa: E402
from bench.harness import (  # noqa: E402
    OUT, Client, Processes, RssSampler, Server, gunicorn_config, log, machine_description, median,
    peak_rss_mb, server_env, start_fake_clerk, start_gunicorn,
)

TOKEN = "bench-importer-token"
OFFSETS = (0, 500_000, 990_000)
DEFAULT_DB = seed_pg.DEFAULT_URLS["bench"]
DEFAULT_CACHE = "redis://127.0.0.1:6379/7"


class NotReady(Exception):
    """The server under test does not serve the endpoint yet."""


@dataclass
class Walk:
    wall: float = 0.0
    pages: list[tuple[int, float, int]] = field(default_factory=list)  # (offset, seconds, objects)
    objects: int = 0
    bytes: int = 0
    in_order: bool = True
    complete: bool = False
    statuses: dict[int, int] = field(default_factory=dict)
    stopped: str = ""

    def page_seconds(self) -> list[float]:
        return [s for _, s, _ in self.pages]


def walk(client: Client, path_for: Callable[[int, int | None], str], extract: Callable[[bytes], list],
         *, limit: int, expected: int, deadline: float, every: int = 1) -> Walk:
    """Walk a feed like Clerk's importer: offsets 0, L, 2L, … until an empty page.

    `path_for(offset, last_id)` builds the request. With `every` > 1, only every `every`'th page
    is fetched (the peer's sampled crawl). Bounded by `deadline` and by a page count.
    """
    result = Walk()
    statuses: Counter = Counter()
    last_id = None
    offset = 0
    started = time.perf_counter()
    max_pages = expected // limit + 3
    for _ in range(max_pages):
        if time.monotonic() > deadline:
            result.stopped = f"deadline reached at offset {offset}"
            break
        response = client.get(path_for(offset, last_id))
        statuses[response.status] += 1
        if response.status != 200:
            result.stopped = f"HTTP {response.status} at offset {offset}: {response.body[:200]!r}"
            break
        items = extract(response.body)
        result.pages.append((offset, response.seconds, len(items)))
        result.bytes += len(response.body)
        if not items:
            result.complete = True
            break
        for item in items:
            if last_id is not None and item["id"] <= last_id and every == 1:
                result.in_order = False
            last_id = item["id"]
        result.objects += len(items)
        offset += limit * every
    result.wall = time.perf_counter() - started
    result.statuses = dict(statuses)
    if every == 1 and result.complete and result.objects != expected:
        result.in_order = False
    return result


def json_array(body: bytes) -> list:
    return orjson.loads(body)


def drf_results(body: bytes) -> list:
    return orjson.loads(body)["results"]


class CountingReader:
    """A file-like view of a streamed response that counts bytes and notes the first byte."""

    def __init__(self, response, started: float) -> None:
        self.response = response
        self.started = started
        self.bytes = 0
        self.first_byte: float | None = None

    def read(self, size: int = 65536) -> bytes:
        data = self.response.read(size)
        if data and self.first_byte is None:
            self.first_byte = time.perf_counter() - self.started
        self.bytes += len(data)
        return data


def stream_whole_feed(client: Client, server: Server, path: str) -> dict:
    """Stream a whole feed, parsing it incrementally; watch the workers' RSS meanwhile."""
    with RssSampler(server) as sampler:
        response, started = client.stream(path)
        status = response.status
        reader = CountingReader(response, started)
        objects = 0
        error = ""
        if status == 200:
            try:
                for _ in ijson.items(reader, "item", use_float=True):
                    objects += 1
            except ijson.JSONError as exc:
                error = f"body does not parse: {exc}"
        else:
            error = f"HTTP {status}: {response.read(300)!r}"
        wall = time.perf_counter() - started
        client.close()
    return {
        "path": path, "status": status, "objects": objects, "bytes": reader.bytes,
        "seconds": wall, "first_byte_seconds": reader.first_byte, "error": error,
        "rss_peak_sampled_mb": sampler.peak, "rss_hwm_mb": peak_rss_mb(server.workers()),
    }


# --- the three servers -------------------------------------------------------------------------
def measure_project(ctx: RunContext) -> dict:
    server = start_gunicorn(ctx.procs, "project", "clerkfeeds.wsgi:application", ctx.env, ctx.run_dir, config=ctx.conf)
    try:
        client = Client(server.base_url, headers={"X-Clerk-Authorization": f"Bearer {TOKEN}"}, timeout=600)
        probe = client.get("/feed/products.json?limit=1")
        if probe.status != 200:
            raise NotReady(f"/feed/products.json answered {probe.status}: {probe.body[:300]!r}")
        limit = ctx.limit

        def page(offset: int, _last: int | None = None) -> str:
            return f"/feed/products.json?limit={limit}&offset={offset}"

        def fresh_walk_state() -> None:
            # Forget every cursor of earlier walks, then verify the token on another feed, so the
            # next products request is a first request at its offset (and pays no Clerk call).
            ctx.cache.flushdb()
            warm = client.get("/feed/categories.json?limit=1")
            if warm.status != 200:
                raise NotReady(f"/feed/categories.json answered {warm.status}")

        for _ in range(3):  # code paths and connections warm
            client.get(page(0))
        cold: dict[int, list[float]] = {o: [] for o in OFFSETS}
        for _ in range(ctx.samples):
            for offset in OFFSETS:
                fresh_walk_state()
                r = client.get(page(offset))
                check_page(r, limit, f"project cold page at {offset}")
                cold[offset].append(r.seconds)
        log(f"project cold pages (median ms): {fmt_medians(cold)}")

        walks = []
        for i in range(ctx.walks):
            fresh_walk_state()
            w = walk(client, page, json_array, limit=limit, expected=ctx.products, deadline=time.monotonic() + 1800)
            log(f"project walk {i + 1}: {w.wall:.1f}s, {w.objects:,} objects, exact={w.in_order and w.complete} {w.stopped}")
            walks.append(w)
        warm = {o: [s for w in walks for off, s, _ in w.pages if o <= off < o + 5 * limit] for o in OFFSETS}
        rss_after_walks = peak_rss_mb(server.workers())

        stream = {}
        if ctx.stream:
            fresh_walk_state()
            log("project: streaming the whole products feed without limit …")
            stream = stream_whole_feed(client, server, "/feed/products.json")
            log(f"project stream: {stream['objects']:,} objects, {stream['bytes'] / 1e6:.0f} MB in {stream['seconds']:.1f}s "
                f"{stream['error']}; RSS peak {max(stream['rss_peak_sampled_mb'].values(), default=0):.0f} MB")
        return {
            "cold_ms": ms(cold), "warm_ms": ms(warm), "walks": [asdict(w) | {"pages": None} for w in walks],
            "walk_wall_s": [w.wall for w in walks], "walks_exact": all(w.in_order and w.complete for w in walks),
            "page_ms_median_in_walks": 1000 * median([s for w in walks for s in w.page_seconds()]),
            "rss_hwm_after_walks_mb": rss_after_walks, "stream": stream,
            "rss_hwm_final_mb": peak_rss_mb(server.workers()),
        }
    finally:
        ctx.procs.stop(server.proc)


def measure_peer(ctx: RunContext) -> dict:
    env = dict(ctx.env, DJANGO_SETTINGS_MODULE="bench.peer.settings")
    server = start_gunicorn(ctx.procs, "peer", "clerkfeeds.wsgi:application", env, ctx.run_dir, config=ctx.conf)
    try:
        client = Client(server.base_url, timeout=600)
        probe = client.get("/peer/products/?limit=1")
        if probe.status != 200:
            raise NotReady(f"peer answered {probe.status}: {probe.body[:300]!r}")
        limit = ctx.limit

        def page(offset: int, _last: int | None = None) -> str:
            return f"/peer/products/?limit={limit}&offset={offset}"

        for _ in range(3):
            client.get(page(0))
        latency: dict[int, list[float]] = {o: [] for o in OFFSETS}
        for _ in range(ctx.samples):
            for offset in OFFSETS:
                r = client.get(page(offset))
                check_page(r, limit, f"peer page at {offset}", extract=drf_results)
                latency[offset].append(r.seconds)
        log(f"peer pages (median ms): {fmt_medians(latency)}")
        n_plus_one = [client.get(f"/peer/products-noprefetch/?limit={limit}&offset=0").seconds for _ in range(3)]
        log(f"peer without prefetch, first page: {1000 * median(n_plus_one):.0f} ms")

        every = 1 if ctx.peer_crawl == "full" else ctx.peer_every
        w = walk(client, page, drf_results, limit=limit, expected=ctx.products,
                 deadline=time.monotonic() + ctx.peer_timeout, every=every)
        if every == 1:
            estimate = w.wall if w.complete else None
            method = "full crawl" if w.complete else f"full crawl stopped: {w.stopped}"
        else:
            fetched = [s for off, s, n in w.pages if n]
            # Systematic sample: each fetched page stands for `every` pages around it (page cost
            # grows with the offset, and the sample covers the whole range evenly).
            estimate = every * sum(fetched) + sum(s for _, s, n in w.pages if not n) if w.complete else None
            method = f"estimated from {len(fetched)} pages (every {every}th page, offsets 0..{w.pages[-1][0]:,}) x {every}"
        log(f"peer crawl: {estimate and round(estimate, 1)} s ({method})")
        return {
            "latency_ms": ms(latency), "noprefetch_first_page_ms": 1000 * median(n_plus_one),
            "crawl_s": estimate, "crawl_method": method,
            "crawl_pages": [(o, round(s * 1000, 1), n) for o, s, n in w.pages],
            "rss_hwm_mb": peak_rss_mb(server.workers()),
        }
    finally:
        ctx.procs.stop(server.proc)


def measure_bare(ctx: RunContext) -> dict:
    server = start_gunicorn(ctx.procs, "bare", "bench.bare_wsgi:application", ctx.env, ctx.run_dir, config=ctx.conf)
    try:
        client = Client(server.base_url, timeout=600)
        limit = ctx.limit

        def page(_offset: int, last_id: int | None) -> str:
            return f"/products?limit={limit}&after={last_id or 0}"

        for _ in range(3):
            client.get(page(0, None))
        latency: dict[int, list[float]] = {o: [] for o in OFFSETS}
        for _ in range(ctx.samples):
            for offset in OFFSETS:
                r = client.get(page(offset, ctx.id_before[offset]))
                check_page(r, limit, f"bare page at {offset}")
                latency[offset].append(r.seconds)
        log(f"bare pages (median ms): {fmt_medians(latency)}")
        walks = []
        for i in range(ctx.walks):
            w = walk(client, page, json_array, limit=limit, expected=ctx.products, deadline=time.monotonic() + 900)
            log(f"bare walk {i + 1}: {w.wall:.1f}s, {w.objects:,} objects, exact={w.in_order and w.complete}")
            walks.append(w)
        return {
            "latency_ms": ms(latency), "walk_wall_s": [w.wall for w in walks],
            "walks_exact": all(w.in_order and w.complete for w in walks),
            "page_ms_median_in_walks": 1000 * median([s for w in walks for s in w.page_seconds()]),
            "rss_hwm_mb": peak_rss_mb(server.workers()),
        }
    finally:
        ctx.procs.stop(server.proc)


# --- helpers -----------------------------------------------------------------------------------
@dataclass
class RunContext:
    procs: Processes
    env: dict[str, str]
    run_dir: Path
    conf: Path
    cache: redis.Redis
    limit: int
    samples: int
    walks: int
    products: int
    id_before: dict[int, int]
    stream: bool
    peer_crawl: str
    peer_every: int
    peer_timeout: float


def check_page(r, limit: int, what: str, extract: Callable[[bytes], list] = json_array) -> None:
    if r.status != 200:
        raise RuntimeError(f"{what}: HTTP {r.status}: {r.body[:300]!r}")
    n = len(extract(r.body))
    if n != limit:
        raise RuntimeError(f"{what}: {n} objects, expected {limit}")


def ms(samples: dict[int, list[float]]) -> dict[str, dict]:
    return {
        str(o): {"median": 1000 * statistics.median(v), "n": len(v), "all": [round(1000 * s, 1) for s in v]}
        for o, v in samples.items() if v
    }


def fmt_medians(samples: dict[int, list[float]]) -> str:
    return ", ".join(f"@{o:,}: {1000 * statistics.median(v):.0f}" for o, v in samples.items() if v)


def ids_before_offsets(url: str) -> tuple[int, dict[int, int]]:
    """The product count, and for each benchmark offset the id of the row just before it."""
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM shop_product").fetchone()[0]
        before = {0: 0}
        for offset in OFFSETS[1:]:
            before[offset] = conn.execute(
                "SELECT id FROM shop_product ORDER BY id OFFSET %s LIMIT 1", (offset - 1,)
            ).fetchone()[0]
    return count, before


def report(results: dict) -> str:
    """The Markdown table and ratios of one run."""
    p, peer, bare = results.get("project"), results.get("peer"), results.get("bare")

    def cell(d, *keys, fmt="{:.0f}"):
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return "n/a"
            d = d[k]
        return fmt.format(d) if d is not None else "n/a"

    def mx(d: dict | None) -> float | None:
        return max(d.values()) if d else None

    lines = [
        "| measure | project | naive DRF peer | bare WSGI limit |",
        "|---|---|---|---|",
    ]
    for o in OFFSETS:
        key = str(o)
        proj = f"{cell(p, 'cold_ms', key, 'median')} cold / {cell(p, 'warm_ms', key, 'median')} warm" if p else "n/a"
        lines.append(f"| page of 1,000 at offset {o:,} (median ms) | {proj} | {cell(peer, 'latency_ms', key, 'median')} | {cell(bare, 'latency_ms', key, 'median')} |")
    pc = median(p["walk_wall_s"]) if p else None
    bc = median(bare["walk_wall_s"]) if bare else None
    ec = peer["crawl_s"] if peer else None
    peer_label = f"{ec:.0f} (est.)" if ec and peer and "estimated" in peer["crawl_method"] else (f"{ec:.0f}" if ec else "n/a")
    lines.append(f"| full crawl, limit 1,000 (s) | {pc:.1f} |" if pc else "| full crawl, limit 1,000 (s) | n/a |")
    lines[-1] += f" {peer_label} | {bc:.1f} |" if bc else f" {peer_label} | n/a |"
    lines.append(
        f"| median page in a crawl (ms) | {cell(p, 'page_ms_median_in_walks', fmt='{:.1f}')} | – | {cell(bare, 'page_ms_median_in_walks', fmt='{:.1f}')} |"
    )
    s = p.get("stream") if p else None
    rss_p = mx(p["rss_hwm_final_mb"]) if p else None
    lines.append(
        f"| peak RSS per worker, VmHWM (MB) | {rss_p:.0f} |" if rss_p else "| peak RSS per worker, VmHWM (MB) | n/a |"
    )
    lines[-1] += f" {mx(peer['rss_hwm_mb']):.0f} |" if peer else " n/a |"
    lines[-1] += f" {mx(bare['rss_hwm_mb']):.0f} |" if bare else " n/a |"
    if s:
        lines.append(
            f"| whole feed without limit | {s['objects']:,} objects, {s['bytes'] / 1e6:.0f} MB in {s['seconds']:.0f} s, "
            f"worker RSS ≤ {mx(s['rss_peak_sampled_mb']) or 0:.0f} MB {s['error']} | – | – |"
        )
    ratios = ["", "| ratio | value | target |", "|---|---|---|"]
    if p:
        for kind in ("cold", "warm"):
            first = p[f"{kind}_ms"].get("0", {}).get("median")
            for o in OFFSETS[1:]:
                deep = p[f"{kind}_ms"].get(str(o), {}).get("median")
                if first and deep:
                    ratios.append(f"| project deep/first page, {kind}, {o:,} / 0 | {deep / first:.2f} | < 1.5 |")
    if peer and peer["latency_ms"].get("0"):
        ratios.append(
            f"| (peer deep/first page, 990,000 / 0) | {peer['latency_ms']['990000']['median'] / peer['latency_ms']['0']['median']:.1f} | – |"
        )
    if pc and ec:
        ratios.append(f"| peer crawl / project crawl | {ec / pc:.1f}× | ≥ 20× |")
    if pc and bc:
        ratios.append(f"| project crawl / bare crawl | {pc / bc:.2f}× | ≤ 2× |")
    if rss_p:
        ratios.append(f"| project peak RSS per worker | {rss_p:.0f} MB | < 200 MB |")
    return "\n".join(lines + ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Feeds benchmark (see the module docstring).")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--cache-url", default=DEFAULT_CACHE, help="Redis db flushed between walks (own it!)")
    parser.add_argument("--only", default="bare,project,peer", help="comma-separated subset, in this order")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=5, help="requests per latency median")
    parser.add_argument("--walks", type=int, default=3, help="full crawls per server (median)")
    parser.add_argument("--no-stream", dest="stream", action="store_false", help="skip the whole-feed stream")
    parser.add_argument("--peer-crawl", choices=("sample", "full"), default="full")
    parser.add_argument("--peer-every", type=int, default=10, help="sampled crawl: every Nth page")
    parser.add_argument("--peer-timeout", type=float, default=1800, help="bound of the peer's crawl (s)")
    parser.add_argument("--skip-seed", action="store_true", help="do not check/build the data")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = OUT / f"feeds-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_seed:
        seed_pg.build(args.database_url, seed_pg.SCALES["bench"])
    products, id_before = ids_before_offsets(args.database_url)
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine_description(),
        "command": "bench/run_feeds.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "products": products, "limit": args.limit,
    }
    status = 0
    with Processes() as procs:
        clerk_url = start_fake_clerk(procs, [TOKEN], run_dir)
        conf, conf_text = gunicorn_config(run_dir)
        results["gunicorn"] = conf_text + ", 2 workers"
        ctx = RunContext(
            procs=procs, run_dir=run_dir, conf=conf, cache=redis.Redis.from_url(args.cache_url),
            env=server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=clerk_url),
            limit=args.limit, samples=args.samples, walks=args.walks, products=products,
            id_before=id_before, stream=args.stream, peer_crawl=args.peer_crawl,
            peer_every=args.peer_every, peer_timeout=args.peer_timeout,
        )
        measures = {"bare": measure_bare, "project": measure_project, "peer": measure_peer}
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            log(f"--- {name}")
            try:
                results[name] = measures[name](ctx)
            except NotReady as exc:
                log(f"{name} not ready: {exc}")
                results[name + "_error"] = str(exc)
                status = 2
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = report(results)
    (run_dir / "table.md").write_text(table + "\n")
    print(f"\n{results['date']} · {results['machine']} · {results['gunicorn']} · {products:,} products\n")
    print(table)
    log(f"raw figures in {run_dir.relative_to(OUT.parent.parent)}/results.json")
    return status


if __name__ == "__main__":
    sys.exit(main())
