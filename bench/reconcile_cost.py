"""What the GDPR reconciliation costs: a customers/orders page with and without the recording of
the ids handed out, and a sweep over every held customer and order, on PostgreSQL.

    .venv/bin/python bench/seed_pg.py --scale load --database-url postgres://…/cf_bench_small
    DATABASE_URL=postgres://…/cf_bench_small .venv/bin/python bench/reconcile_cost.py --pages 40

Pages are read in-process (`feeds.stream.feed_chunks`, the code the HTTP view streams), limit
1,000, walking offsets as Clerk does. The recording is timed inside each page (a wrapper in the
bench only), so the ratio (page time) / (page time without the recording) is immune to a busy
machine. The first walk records new ids; later walks are the steady state. The sweep runs twice
on holdings seeded with every customer and order (the upgrade case, the largest they get): the
first pass queues what the policy does not admit, the second finds nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clerkfeeds.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from clerk.models import ClerkDeletion  # noqa: E402
from feeds import stream  # noqa: E402
from feeds.params import FeedParams  # noqa: E402
from gdpr.models import ClerkHolding  # noqa: E402
from gdpr.sweep import sweep  # noqa: E402


def walk(feed: str, pages: int, *, client: str) -> float:
    """Seconds to read `pages` pages of 1,000 from the start, as one walk."""
    started = time.perf_counter()
    for page in range(pages):
        body = b"".join(stream.feed_chunks(feed, params=FeedParams(limit=1000, offset=page * 1000), client=client))
        if body == b"[]":
            raise SystemExit(f"{feed} has fewer than {pages} pages: seed a larger shop")
    return time.perf_counter() - started


def pages(feed: str, count: int, rounds: int) -> dict[str, float]:
    """The recording's share of `rounds` walks of `count` pages: the first walk, then the median."""
    real, spent = stream.record_handed_out, [0.0]

    def timed(**kwargs):
        started = time.perf_counter()
        real(**kwargs)
        spent[0] += time.perf_counter() - started

    walks = []
    with mock.patch.object(stream, "record_handed_out", timed):
        for r in range(rounds):
            spent[0] = 0.0
            total = walk(feed, count, client=f"bench-{r}")
            walks.append((1000 * spent[0] / count, 1000 * total / count))
    steady = walks[1:] or walks
    rec, page = statistics.median(w[0] for w in steady), statistics.median(w[1] for w in steady)
    return {"first_ms": walks[0][0], "rec_ms": rec, "page_ms": page, "ratio": page / (page - rec)}


def seed_holdings() -> int:
    """Hold every customer and order (as migration 0004 did on an upgrade); returns how many."""
    ClerkHolding.objects.all().delete()
    with connection.cursor() as cursor:
        for object_type, table in (("customers", "shop_customer"), ("orders", "shop_order")):
            cursor.execute(
                "INSERT INTO gdpr_clerkholding (object_type, block, bits, since) "
                "SELECT %s, id >> 6, CAST(SUM(CAST(1 AS BIGINT) << CAST(id & 63 AS INTEGER)) AS BIGINT), now() "
                f"FROM {table} GROUP BY id >> 6",
                [object_type],
            )
        cursor.execute("SELECT (SELECT count(*) FROM shop_customer) + (SELECT count(*) FROM shop_order)")
        return cursor.fetchone()[0]


def timed_sweep() -> tuple[float, int, str]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = sweep()
        seconds = time.perf_counter() - started
    return seconds, len(queries), str(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40, help="pages of 1,000 per walk (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="walks per feed (default 5)")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="pages only")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("run it on PostgreSQL (DATABASE_URL)")
    for feed in ("orders", "customers"):
        r = pages(feed, args.pages if feed == "orders" else max(1, args.pages // 4), args.rounds)
        print(
            f"{feed}: recording {r['first_ms']:.2f} ms/page on the first walk; then {r['rec_ms']:.2f} ms "
            f"of a {r['page_ms']:.1f} ms page: ratio {r['ratio']:.3f}"
        )
    if not args.sweep:
        return
    held = seed_holdings()
    print(f"holdings seeded with every customer and order: {held}")
    for label in ("first sweep (upgrade)", "second sweep (steady)"):
        seconds, queries, report = timed_sweep()
        print(f"{label}: {seconds:.1f} s, {queries} queries: {report}")
    # Leave the bench database as the seed made it.
    ClerkDeletion.objects.all().delete()
    ClerkHolding.objects.all().delete()


if __name__ == "__main__":
    main()
