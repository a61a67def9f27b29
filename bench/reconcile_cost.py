"""What the GDPR reconciliation costs: a customers/orders page with and without the recording of
the ids handed out, and a sweep over every held customer and order, on PostgreSQL.

    .venv/bin/python bench/seed_pg.py --scale load --database-url postgres://…/cf_bench_small
    DATABASE_URL=postgres://…/cf_bench_small .venv/bin/python bench/reconcile_cost.py --pages 40

Pages are read in-process (`feeds.stream.feed_chunks`, the code the HTTP view streams), limit
1,000, walking offsets as Clerk does; recording on and off alternate round by round, so both see
the same database and cache state. "Off" replaces the recording by a no-op here, in the bench
only: production code has no switch. The sweep runs twice on a holdings table seeded with every
customer and order (the upgrade case, the largest the table gets): the first pass queues what
the policy does not admit, the second finds nothing (the steady state of an hourly worker).
"""

from __future__ import annotations

import argparse
import contextlib
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
    times: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            with mock.patch.object(stream, "record_handed_out") if mode == "off" else contextlib.nullcontext():
                times[mode].append(walk(feed, count, client=f"bench-{mode}-{r}"))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"on_ms": 1000 * on / count, "off_ms": 1000 * off / count, "ratio": on / off}


def seed_holdings() -> int:
    ClerkHolding.objects.all().delete()
    with connection.cursor() as cursor:
        for object_type, table in (("customers", "shop_customer"), ("orders", "shop_order")):
            cursor.execute(
                "INSERT INTO gdpr_clerkholding (object_type, object_id, since) SELECT %s, id, now() FROM " + table,
                [object_type],
            )
    return ClerkHolding.objects.count()


def timed_sweep() -> tuple[float, int, str]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = sweep()
        seconds = time.perf_counter() - started
    return seconds, len(queries), str(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40, help="pages of 1,000 per walk (default 40)")
    parser.add_argument("--rounds", type=int, default=4, help="walks per mode (default 4)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("run it on PostgreSQL (DATABASE_URL)")
    for feed in ("orders", "customers"):
        r = pages(feed, args.pages if feed == "orders" else max(1, args.pages // 4), args.rounds)
        print(f"{feed}: {r['off_ms']:.1f} ms/page without recording, {r['on_ms']:.1f} ms with: ratio {r['ratio']:.3f}")
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
