"""Feeds benchmark: the project against a naive DRF peer and a bare WSGI limit, in one run.

    .venv/bin/python bench/run_feeds.py            # everything (builds the data on first run)

1. Builds (or finds) 1,000,000 products, 1,000 categories, 2,000,000 orders on PostgreSQL
   (bench/seed_pg.py, database clerkfeeds_bench), and starts the project's fake Clerk on loopback.
2. Starts the three servers side by side under the same gunicorn settings (the project's
   gunicorn.conf.py, 2 workers each, DJANGO_DEBUG=0, Redis cache db 7, X-Forwarded-Proto:
   https): the bare WSGI app, the project, the DRF peer. Measurements are interleaved (a sample
   of each server in turn, a crawl of each in turn) so the shared machine's noise hits all alike:
   - latency of a 1,000-row page at offsets 0, 500,000 and 990,000 (median of --samples);
     for the project "cold" (cache flushed: a single request at that offset, no walk before it)
     and "warm" (the same pages, and the four after them, reached within the full walks);
   - the wall time of a full importer crawl with limit 1,000 (offset 0, 1000, … until `[]`; the
     bare app takes the last id seen instead of the offset), median of --walks walks, each
     checked: every product exactly once, in id order. The peer's crawl runs in full (bounded
     by --peer-timeout) or, with --peer-crawl sample, is estimated from every --peer-every'th
     page; one more project crawl follows it, for a ratio taken under the same load;
   - peak RSS per worker (VmHWM), for the project also after streaming the whole
     1,000,000-product feed without `limit` (bytes and objects counted while streaming, RSS
     sampled every 0.1 s).
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
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ijson
import orjson
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed_pg
from bench.harness import (
    OUT,
    Client,
    Processes,
    RssSampler,
    Server,
    gunicorn_config,
    log,
    machine_description,
    median,
    peak_rss_mb,
    server_env,
    start_fake_clerk,
    start_gunicorn,
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


def walk(
    client: Client,
    path_for: Callable[[int, int | None], str],
    extract: Callable[[bytes], list],
    *,
    limit: int,
    expected: int,
    deadline: float,
    every: int = 1,
) -> Walk:
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
        "path": path,
        "status": status,
        "objects": objects,
        "bytes": reader.bytes,
        "seconds": wall,
        "first_byte_seconds": reader.first_byte,
        "error": error,
        "rss_peak_sampled_mb": sampler.peak,
        "rss_hwm_mb": peak_rss_mb(server.workers()),
    }


# --- the three servers -------------------------------------------------------------------------
class Target(ABC):
    """One server under test: how to ask it for a page, and what its pages look like."""

    name: str
    app: str = "clerkfeeds.wsgi:application"
    settings_module = "clerkfeeds.settings"
    extract: Callable[[bytes], list] = staticmethod(json_array)
    headers: dict[str, str] = {}

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        env = dict(ctx.env, DJANGO_SETTINGS_MODULE=self.settings_module)
        self.server = start_gunicorn(ctx.procs, self.name, self.app, env, ctx.run_dir, config=ctx.conf)
        self.client = Client(self.server.base_url, headers=self.headers, timeout=600)
        self.latency: dict[int, list[float]] = {o: [] for o in OFFSETS}
        self.first_ids: dict[int, set[int]] = {}
        self.walks: list[Walk] = []

    @abstractmethod
    def path(self, offset: int, last_id: int | None) -> str:
        """The URL of the page at `offset` (the bare app pages by `last_id` instead)."""

    def probe(self) -> None:
        r = self.client.get(self.tiny_page_path())
        if r.status != 200:
            raise NotReady(f"{self.name} answered {r.status}: {r.body[:300]!r}")
        for _ in range(3):  # code paths, connections and caches warm
            self.client.get(self.path(0, None))
        self.tiny: list[float] = []

    def tiny_page_path(self) -> str:
        return self.path(0, None).replace(f"limit={self.ctx.limit}", "limit=1")

    def sample_tiny(self) -> None:
        """A one-object first page: what a request costs apart from its rows."""
        r = self.client.get(self.tiny_page_path())
        check_page(r, 1, f"{self.name} one-object page", extract=self.extract)
        self.tiny.append(r.seconds)

    def before_single_request(self) -> None:
        """Called before each latency sample (the project forgets its walk state here)."""

    def sample(self, offset: int) -> None:
        self.before_single_request()
        r = self.client.get(self.path(offset, self.ctx.id_before[offset]))
        check_page(r, self.ctx.limit, f"{self.name} page at {offset}", extract=self.extract)
        self.latency[offset].append(r.seconds)
        self.first_ids.setdefault(offset, set()).add(self.extract(r.body)[0]["id"])

    def start_positions(self) -> dict[str, list[int]]:
        """Where the sampled single pages really started (position of their first row)."""
        with psycopg.connect(self.ctx.database_url) as conn:
            return {
                str(offset): sorted(
                    conn.execute("SELECT count(*) FROM shop_product WHERE id < %s", (first,)).fetchone()[0]
                    for first in firsts
                )
                for offset, firsts in self.first_ids.items()
            }

    def crawl(self, *, every: int = 1, timeout: float = 1800) -> Walk:
        self.before_single_request()
        w = walk(
            self.client,
            self.path,
            self.extract,
            limit=self.ctx.limit,
            expected=self.ctx.products,
            deadline=time.monotonic() + timeout,
            every=every,
        )
        if every == 1:
            self.walks.append(w)
            log(
                f"{self.name} walk {len(self.walks)}: {w.wall:.1f}s, {w.objects:,} objects, "
                f"exact={w.in_order and w.complete} {w.stopped}"
            )
        return w

    def rss(self) -> dict[int, float]:
        return peak_rss_mb(self.server.workers())

    def summary(self) -> dict:
        return {
            "latency_ms": ms(self.latency),
            "walk_wall_s": [w.wall for w in self.walks],
            "walks_exact": all(w.in_order and w.complete for w in self.walks),
            "walks": [asdict(w) | {"pages": None} for w in self.walks],
            "page_ms_median_in_walks": 1000 * median([s for w in self.walks for s in w.page_seconds()])
            if self.walks
            else None,
            "rss_hwm_mb": self.rss(),
            "one_object_page_ms": 1000 * median(self.tiny) if self.tiny else None,
            "single_page_start_positions": self.start_positions(),
        }


class Bare(Target):
    name = "bare"
    app = "bench.bare_wsgi:application"

    def path(self, offset: int, last_id: int | None) -> str:
        return f"/products?limit={self.ctx.limit}&after={last_id or 0}"


class Project(Target):
    name = "project"
    headers = {"X-Clerk-Authorization": f"Bearer {TOKEN}"}

    def path(self, offset: int, last_id: int | None) -> str:
        return f"/feed/products.json?limit={self.ctx.limit}&offset={offset}"

    def before_single_request(self) -> None:
        # Forget every cursor of earlier walks, then verify the token on another feed, so the
        # next products request is a first request at its offset (and pays no Clerk call).
        self.ctx.cache.flushdb()
        warm = self.client.get("/feed/categories.json?limit=1")
        if warm.status != 200:
            raise NotReady(f"/feed/categories.json answered {warm.status}")

    def warm_latency(self) -> dict[int, list[float]]:
        """The pages at (and just after) each benchmark offset, as reached within the walks."""
        limit = self.ctx.limit
        return {o: [s for w in self.walks for off, s, _ in w.pages if o <= off < o + 5 * limit] for o in OFFSETS}

    def stream(self) -> dict:
        self.before_single_request()
        log("project: streaming the whole products feed without limit …")
        result = stream_whole_feed(self.client, self.server, "/feed/products.json")
        log(
            f"project stream: {result['objects']:,} objects, {result['bytes'] / 1e6:.0f} MB in "
            f"{result['seconds']:.1f}s {result['error']}; worker RSS peak "
            f"{max(result['rss_peak_sampled_mb'].values(), default=0):.0f} MB"
        )
        return result


class Peer(Target):
    name = "peer"
    settings_module = "bench.peer.settings"
    extract = staticmethod(drf_results)

    def path(self, offset: int, last_id: int | None) -> str:
        return f"/peer/products/?limit={self.ctx.limit}&offset={offset}"

    def n_plus_one_first_page(self) -> float:
        samples = [
            self.client.get(f"/peer/products-noprefetch/?limit={self.ctx.limit}&offset=0").seconds for _ in range(3)
        ]
        return 1000 * median(samples)

    def n_plus_one_crawl_estimate(self, every: int) -> float | None:
        """The crawl of the same view without `prefetch_related` (one query per product for its
        categories, as such views are often first written), estimated from every `every`th page
        (every=1: the full crawl, measured)."""

        def path(offset: int, _last: int | None) -> str:
            return f"/peer/products-noprefetch/?limit={self.ctx.limit}&offset={offset}"

        w = walk(
            self.client,
            path,
            drf_results,
            limit=self.ctx.limit,
            expected=self.ctx.products,
            deadline=time.monotonic() + self.ctx.peer_timeout,
            every=every,
        )
        if not w.complete:
            return None
        return every * sum(s for _, s, n in w.pages if n) + sum(s for _, s, n in w.pages if not n)

    def estimated_crawl(self, mode: str, every: int, timeout: float) -> tuple[float | None, str, Walk]:
        every = 1 if mode == "full" else every
        w = self.crawl(every=every, timeout=timeout)
        if every == 1:
            if w.complete:
                return w.wall, f"full crawl ({w.objects:,} objects, exact={w.in_order})", w
            return None, f"full crawl stopped: {w.stopped}", w
        if not w.complete:
            return None, f"sampled crawl stopped: {w.stopped}", w
        fetched = [s for _, s, n in w.pages if n]
        # Systematic sample: each fetched page stands for the `every` pages from it on (a page's
        # cost grows with its offset, and the sample covers the whole range evenly).
        estimate = every * sum(fetched) + sum(s for _, s, n in w.pages if not n)
        return estimate, f"estimated: {len(fetched)} pages fetched (every {every}th), times {every}", w


def run_targets(ctx: RunContext, names: list[str]) -> dict:
    """Start the servers, then measure them interleaved, so the machine's noise hits all alike."""
    classes = {"bare": Bare, "project": Project, "peer": Peer}
    targets: dict[str, Target] = {}
    results: dict = {}
    for name in names:
        target = classes[name](ctx)
        try:
            target.probe()
        except NotReady as exc:
            log(f"{name} not ready: {exc}")
            results[name + "_error"] = str(exc)
            ctx.procs.stop(target.server.proc)
            continue
        targets[name] = target
    if not targets:
        return results

    log(f"latency: {ctx.samples} samples of each offset, servers interleaved")
    for _ in range(ctx.samples):
        for offset in OFFSETS:
            for target in targets.values():
                target.sample(offset)
    for _ in range(3 * ctx.samples):
        for target in targets.values():
            target.sample_tiny()
    for target in targets.values():
        log(
            f"{target.name} pages (median ms){' cold' if target.name == 'project' else ''}: {fmt_medians(target.latency)}; "
            f"one-object page {1000 * median(target.tiny):.1f} ms"
        )

    crawlers = [t for n, t in targets.items() if n in ("bare", "project")]
    for _ in range(ctx.walks):
        for target in crawlers:
            target.crawl()

    for name, target in targets.items():
        results[name] = target.summary()
    if "project" in targets:
        project = targets["project"]
        results["project"]["cold_ms"] = results["project"].pop("latency_ms")
        results["project"]["warm_ms"] = ms(project.warm_latency())
        results["project"]["rss_hwm_after_walks_mb"] = project.rss()
        if ctx.stream:
            results["project"]["stream"] = project.stream()
        results["project"]["rss_hwm_mb"] = project.rss()
    if "bare" in targets and "project" in targets:
        rounds = zip(targets["project"].walks, targets["bare"].walks)
        results["project_over_bare_per_round"] = [p.wall / b.wall for p, b in rounds]
    if "peer" in targets:
        peer = targets["peer"]
        results["peer"]["noprefetch_first_page_ms"] = peer.n_plus_one_first_page()
        log(f"peer without prefetch, first page: {results['peer']['noprefetch_first_page_ms']:.0f} ms")
        log(f"peer crawl ({ctx.peer_crawl}) …")
        estimate, method, w = peer.estimated_crawl(ctx.peer_crawl, ctx.peer_every, ctx.peer_timeout)
        log(f"peer crawl: {estimate and round(estimate, 1)} s ({method})")
        results["peer"].update(
            crawl_s=estimate,
            crawl_method=method,
            rss_hwm_mb=peer.rss(),
            crawl_pages=[(o, round(s * 1000, 1), n) for o, s, n in w.pages],
        )
        if "project" in targets:
            # One more project crawl right after the peer's, for a ratio taken under the same load.
            results["project"]["crawl_after_peer_s"] = targets["project"].crawl().wall
        if ctx.peer_n_plus_one:
            every = 1 if ctx.n_plus_one_crawl == "full" else 20
            log(f"peer without prefetch_related: {ctx.n_plus_one_crawl} crawl (every {every} page) …")
            crawl = peer.n_plus_one_crawl_estimate(every)
            results["peer"]["noprefetch_crawl_s"] = crawl
            results["peer"]["noprefetch_crawl_method"] = (
                "full crawl" if every == 1 else "estimated from every 20th page"
            )
            log(
                f"peer without prefetch_related: crawl {crawl and round(crawl)} s ({results['peer']['noprefetch_crawl_method']})"
            )
            if "project" in targets:
                results["project"]["crawl_after_n_plus_one_s"] = targets["project"].crawl().wall
    for target in targets.values():
        ctx.procs.stop(target.server.proc)
    return results


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
    peer_n_plus_one: bool = True
    n_plus_one_crawl: str = "sample"
    database_url: str = DEFAULT_DB


def check_page(r, limit: int, what: str, extract: Callable[[bytes], list] = json_array) -> None:
    if r.status != 200:
        raise RuntimeError(f"{what}: HTTP {r.status}: {r.body[:300]!r}")
    n = len(extract(r.body))
    if n != limit:
        raise RuntimeError(f"{what}: {n} objects, expected {limit}")


def ms(samples: dict[int, list[float]]) -> dict[str, dict]:
    return {
        str(o): {"median": 1000 * statistics.median(v), "n": len(v), "all": [round(1000 * s, 1) for s in v]}
        for o, v in samples.items()
        if v
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

    def get(d: dict | None, *keys):
        for k in keys:
            if not isinstance(d, dict) or d.get(k) is None:
                return None
            d = d[k]
        return d

    def num(value, fmt="{:.0f}") -> str:
        return "n/a" if value is None else fmt.format(value)

    def mx(d: dict | None) -> float | None:
        return max(d.values()) if d else None

    lines = ["| measure | project | naive DRF peer | bare WSGI limit |", "|---|---|---|---|"]
    for o in OFFSETS:
        k = str(o)
        proj = f"{num(get(p, 'cold_ms', k, 'median'))} cold / {num(get(p, 'warm_ms', k, 'median'))} warm"
        lines.append(
            f"| page of 1,000 at offset {o:,}, median ms | {proj} | "
            f"{num(get(peer, 'latency_ms', k, 'median'))} | {num(get(bare, 'latency_ms', k, 'median'))} |"
        )
    pc = median(p["walk_wall_s"]) if p and p["walk_wall_s"] else None
    bc = median(bare["walk_wall_s"]) if bare and bare["walk_wall_s"] else None
    ec = get(peer, "crawl_s")
    estimated = bool(peer) and "estimated" in (peer.get("crawl_method") or "")

    def spread(d: dict | None) -> str:
        walls = (d or {}).get("walk_wall_s") or []
        return f"median of {len(walls)}, {min(walls):.1f}–{max(walls):.1f}" if walls else "none"

    lines.append(
        f"| full crawl of 1,000,000 products, limit 1,000, s | {num(pc, '{:.1f}')} ({spread(p)}; "
        f"{num(get(p, 'crawl_after_peer_s'), '{:.1f}')} right after the peer's) | "
        f"{num(ec)}{' (estimated)' if estimated else ''} | {num(bc, '{:.1f}')} ({spread(bare)}) |"
    )
    lines.append(
        f"| every crawl exact (each product once, in id order) | {get(p, 'walks_exact')} | – | {get(bare, 'walks_exact')} |"
    )
    lines.append(
        f"| median page within a crawl, ms | {num(get(p, 'page_ms_median_in_walks'), '{:.1f}')} | – | "
        f"{num(get(bare, 'page_ms_median_in_walks'), '{:.1f}')} |"
    )
    lines.append(
        f"| peak RSS per worker (VmHWM, max of 2 workers), MB | {num(mx(get(p, 'rss_hwm_mb')))} | "
        f"{num(mx(get(peer, 'rss_hwm_mb')))} | {num(mx(get(bare, 'rss_hwm_mb')))} |"
    )
    stream = get(p, "stream")
    if stream:
        lines.append(
            f"| whole feed without `limit` (project) | {stream['objects']:,} objects, {stream['bytes'] / 1e6:.0f} MB in "
            f"{stream['seconds']:.0f} s (first byte {1000 * (stream['first_byte_seconds'] or 0):.0f} ms); worker RSS "
            f"≤ {num(mx(stream['rss_peak_sampled_mb']))} MB {stream['error']} | – | – |"
        )
    lines.append(
        f"| one-object first page (`limit=1`): the cost of a request apart from its rows, median ms | "
        f"{num(get(p, 'one_object_page_ms'), '{:.1f}')} | {num(get(peer, 'one_object_page_ms'), '{:.1f}')} | "
        f"{num(get(bare, 'one_object_page_ms'), '{:.1f}')} |"
    )
    starts = get(p, "single_page_start_positions")
    if starts:
        lines.append(
            "| where a cold single page really starts (position of its first row) | "
            + "; ".join(
                f"offset {int(o):,}: {', '.join(f'{v:,}' for v in vs)}"
                for o, vs in sorted(starts.items(), key=lambda kv: int(kv[0]))
            )
            + " | – | – |"
        )
    if peer and peer.get("noprefetch_first_page_ms"):
        est = peer.get("noprefetch_crawl_s")
        how = peer.get("noprefetch_crawl_method") or "estimated from every 20th page"
        lines.append(
            f"| peer without `prefetch_related` (N+1): first page ms; crawl s ({how}) | – | "
            f"{peer['noprefetch_first_page_ms']:.0f}; {num(est)} | – |"
        )

    ratios = ["", "| ratio | value | target |", "|---|---|---|"]
    for kind in ("cold", "warm"):
        first = get(p, f"{kind}_ms", "0", "median")
        for o in OFFSETS[1:]:
            deep = get(p, f"{kind}_ms", str(o), "median")
            if first and deep:
                ratios.append(f"| project deep / first page, {kind}, offset {o:,} / 0 | {deep / first:.2f} | < 1.5 |")
    if get(peer, "latency_ms", "0", "median") and get(peer, "latency_ms", "990000", "median"):
        ratios.append(
            f"| (peer deep / first page, offset 990,000 / 0) | "
            f"{peer['latency_ms']['990000']['median'] / peer['latency_ms']['0']['median']:.2f} | – |"
        )
    if pc and ec:
        after = get(p, "crawl_after_peer_s")
        extra = f" ({ec / after:.1f}× against the crawl right after it)" if after else ""
        ratios.append(f"| peer crawl / project crawl | {ec / pc:.1f}×{extra} | ≥ 20× |")
    if bc and ec:
        ratios.append(f"| (peer crawl / bare crawl: the most any implementation could reach) | {ec / bc:.1f}× | – |")
    est = get(peer, "noprefetch_crawl_s")
    if pc and est:
        how = get(peer, "noprefetch_crawl_method") or "estimated"
        after = get(p, "crawl_after_n_plus_one_s")
        extra = f" ({est / after:.1f}× against the crawl right after it)" if after else ""
        ratios.append(f"| N+1 peer crawl ({how}) / project crawl | {est / pc:.1f}×{extra} | ≥ 20× |")
    if pc and bc:
        rounds = results.get("project_over_bare_per_round") or []
        extra = f" (per interleaved round: {', '.join(f'{r:.2f}' for r in rounds)})" if rounds else ""
        ratios.append(f"| project crawl / bare crawl | {pc / bc:.2f}×{extra} | ≤ 2× |")
    rss = mx(get(p, "rss_hwm_mb"))
    if rss:
        ratios.append(f"| project peak RSS per worker, whole-feed stream included | {rss:.0f} MB | < 200 MB |")
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
    parser.add_argument(
        "--n-plus-one-crawl",
        choices=("sample", "full"),
        default="sample",
        help="the peer without prefetch_related: every 20th page, or the full crawl (~10 min)",
    )
    parser.add_argument(
        "--no-n-plus-one",
        dest="peer_n_plus_one",
        action="store_false",
        help="skip the estimated crawl of the peer without prefetch_related",
    )
    parser.add_argument("--skip-seed", action="store_true", help="do not check/build the data")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = OUT / f"feeds-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_seed:
        seed_pg.build(args.database_url, seed_pg.SCALES["bench"])
    products, id_before = ids_before_offsets(args.database_url)
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_description(),
        "command": "bench/run_feeds.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "products": products,
        "limit": args.limit,
    }
    with Processes() as procs:
        clerk_url = start_fake_clerk(procs, [TOKEN], run_dir)
        conf, conf_text = gunicorn_config(run_dir)
        results["gunicorn"] = conf_text + ", 2 workers"
        ctx = RunContext(
            procs=procs,
            run_dir=run_dir,
            conf=conf,
            cache=redis.Redis.from_url(args.cache_url),
            env=server_env(database_url=args.database_url, cache_url=args.cache_url, clerk_url=clerk_url),
            limit=args.limit,
            samples=args.samples,
            walks=args.walks,
            products=products,
            id_before=id_before,
            stream=args.stream,
            peer_crawl=args.peer_crawl,
            peer_every=args.peer_every,
            peer_timeout=args.peer_timeout,
            peer_n_plus_one=args.peer_n_plus_one,
            n_plus_one_crawl=args.n_plus_one_crawl,
            database_url=args.database_url,
        )
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        results.update(run_targets(ctx, names))
        status = 2 if any(k.endswith("_error") for k in results) else 0
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = report(results)
    (run_dir / "table.md").write_text(table + "\n")
    print(f"\n{results['date']} · {results['machine']} · {results['gunicorn']} · {products:,} products\n")
    print(table)
    log(f"raw figures in {run_dir.relative_to(OUT.parent.parent)}/results.json")
    return status


if __name__ == "__main__":
    sys.exit(main())
