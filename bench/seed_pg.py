"""Build a large, deterministic shop on PostgreSQL for the benchmarks, with set-based SQL.

    .venv/bin/python bench/seed_pg.py                      # the feeds benchmark's 1M products
    .venv/bin/python bench/seed_pg.py --scale load         # the load test's 100k products

What it makes (sizes of the `bench` scale; `load` is a tenth):
- 1,000 categories in a three-level tree;
- 1,000,000 products with even ids 2, 4, … (the gaps let the load test import new products in
  the middle of the id range), each in 1-3 categories (about 2,000,000 memberships), with
  brand, list price, extra attributes and 2% `index: false`;
- 200,000 customers with every consent case of the GDPR policy: explicit grants, withdrawals
  (objections), grant-then-withdrawal and the reverse, no record with or without a contract,
  old and recent registrations, erased customers; marketing consent for about a third;
- 2,000,000 orders over four years (so about half fall outside the 730-day window), 10% guests
  (most with terms accepted at checkout), 1-4 lines each (about 5,000,000 lines);
- 1,000 pages.

Every row is a pure function of its number (a multiplicative hash stands in for randomness),
so two builds are identical apart from `now()`. Rows are generated inside PostgreSQL
(`INSERT … SELECT generate_series`), never through the ORM. The build is idempotent: each group
of tables (catalogue, people, pages) is skipped when its row counts already match, and rebuilt
from empty otherwise (the load test changes its database, so the next run rebuilds that). The
schema is the project's own: the script runs `manage.py migrate` first.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URLS = {
    "bench": "postgres://postgres@127.0.0.1:5432/clerkfeeds_bench",
    "load": "postgres://postgres@127.0.0.1:5432/clerkfeeds_load",
}

# Knuth's multiplicative hash: a cheap, deterministic stand-in for randomness in SQL.
H = "((({g}) * 2654435761::bigint) % 4294967296)"


def h(expr: str) -> str:
    return H.format(g=expr)


@dataclasses.dataclass(frozen=True)
class Scale:
    categories: int
    products: int
    customers: int
    orders: int
    pages: int

    # Expected row counts, for the idempotency check (each formula mirrors its INSERT below).
    def product_categories(self) -> int:
        return sum(1 + g % 3 for g in range(1, self.products + 1))

    def order_lines(self) -> int:
        return sum(1 + (g * 7) % 4 for g in range(1, self.orders + 1))

    def consent_records(self) -> int:
        total = 0
        for g in range(1, self.customers + 1):
            s = g % 20
            total += 1 if s <= 7 else 2 if s <= 9 else 0
            total += 1 if g % 3 == 0 or (g % 3 == 1 and g % 7 == 0) else 0
        return total


SCALES = {
    "bench": Scale(categories=1000, products=1_000_000, customers=200_000, orders=2_000_000, pages=1000),
    "load": Scale(categories=1000, products=100_000, customers=20_000, orders=200_000, pages=200),
}

CATALOGUE_SQL = [
    # Categories: 50 roots, 250 children of the roots, 700 grandchildren.
    """
    INSERT INTO shop_category (id, updated_at, translations, name, url, image, description, parent_id)
    SELECT c, now() - make_interval(days => c % 400), '{{}}'::jsonb,
           'Category ' || c, 'https://shop.example/c/' || c, '',
           'All our ' || (ARRAY['shoes','shirts','bags','hats','watches','toys','books','lamps'])[1 + c % 8]
             || ', selection ' || c || '.',
           CASE WHEN c <= 50 THEN NULL WHEN c <= 300 THEN 1 + (c % 50) ELSE 51 + (c % 250) END
    FROM generate_series(1, {categories}) AS c
    """,
    """
    INSERT INTO shop_product (id, updated_at, translations, name, description, price, list_price,
                              image, url, brand, created_at, index, attributes)
    SELECT 2 * g,
           now() - make_interval(days => ({hg} % 900)::int, secs => ({hg} % 86400)::int),
           '{{}}'::jsonb,
           (ARRAY['Red','Blue','Green','Black','White','Yellow','Grey','Pink'])[1 + g % 8] || ' '
             || (ARRAY['Runner','Classic','Trail','Urban','Sport','Comfort','Pro','Lite'])[1 + (g / 8) % 8] || ' '
             || (ARRAY['shoe','shirt','bag','hat','watch','toy','book','lamp'])[1 + (g / 64) % 8] || ' #' || g,
           'A well-made product with a long description, as shops write them: comfortable, durable, '
             || 'easy to care for. Model ' || g || ', series ' || ({hg} % 997) || '. Ships in 2-3 days.',
           round((5 + ({hg} % 50000) / 100.0)::numeric, 2),
           CASE WHEN g % 10 < 3 THEN round((5 + ({hg} % 50000) / 100.0)::numeric * 1.25, 2) END,
           'https://shop.example/img/' || g || '.jpg',
           'https://shop.example/p/' || g,
           CASE WHEN g % 10 = 9 THEN '' ELSE 'Brand ' || (1 + {hg} % 50) END,
           now() - make_interval(days => (900 + {hg} % 900)::int),
           g % 50 <> 0,
           jsonb_build_object(
             'color_names', jsonb_build_array(
               (ARRAY['red','blue','green','black','white'])[1 + g % 5],
               (ARRAY['navy','olive','sand','grey'])[1 + g % 4]),
             'stock', {hg} % 200,
             'reviews_avg', ({hg} % 50) / 10.0)
    FROM generate_series(1, {products}) AS g
    """,
    # Each product in 1-3 distinct categories (131 and 262 are not multiples of 1000).
    """
    INSERT INTO shop_productcategory (product_id, category_id)
    SELECT 2 * g, 1 + (g * 7 + k * 131) % {categories}
    FROM generate_series(1, {products}) AS g, generate_series(1, 3) AS k
    WHERE k <= 1 + g % 3
    """,
]

PEOPLE_SQL = [
    # Customers: registered_at NULL for 15%; registrations spread over 5 years (some older than
    # the 730-day window); terms accepted by 90% of the registered; 1% erased.
    """
    INSERT INTO shop_customer (id, updated_at, name, email, email_key, zip, gender, birth_date, age,
                               is_b2b, registered_at, terms_accepted_at, erased_at)
    SELECT g, now() - make_interval(days => ({hg} % 700)::int),
           CASE WHEN g % 100 = 99 THEN '' ELSE 'Customer ' || g END,
           CASE WHEN g % 100 = 99 THEN '' ELSE 'customer' || g || '@example.com' END,
           CASE WHEN g % 100 = 99 THEN '' ELSE 'customer' || g || '@example.com' END,
           lpad((({hg} % 99999))::text, 5, '0'),
           (ARRAY['female','male',''])[1 + g % 3],
           NULL, CASE WHEN g % 4 = 0 THEN (18 + {hg} % 60)::int END,
           CASE WHEN g % 20 = 0 THEN true END,
           CASE WHEN g % 100 < 15 THEN NULL ELSE now() - make_interval(days => ({hg} % 1825)::int) END,
           CASE WHEN g % 100 < 15 OR g % 10 = 3 THEN NULL
                ELSE now() - make_interval(days => ({hg} % 1825)::int) END,
           CASE WHEN g % 100 = 99 THEN now() - interval '10 days' END
    FROM generate_series(1, {customers}) AS g
    """,
    # Each live customer's email history: their current (ASCII, lower-case: its own key) email.
    """
    INSERT INTO shop_customeremail (customer_id, email, email_key, first_seen)
    SELECT id, email, email_key, coalesce(registered_at, updated_at) FROM shop_customer WHERE email <> ''
    """,
    # Sharing consent (purpose third_party_sharing), bucket s = g % 20:
    # 0-5 grant, 6-7 withdrawal (objection), 8 grant then withdrawal, 9 withdrawal then grant.
    """
    INSERT INTO gdpr_consentrecord (customer_id, purpose, granted, at, source, evidence, recorded_at)
    SELECT g, 'third_party_sharing',
           CASE WHEN k = 1 THEN g % 20 NOT IN (6, 7, 9) ELSE g % 20 = 9 END,
           now() - make_interval(days => (CASE WHEN k = 1 THEN 400 ELSE 30 END + {hg} % 300)::int),
           (ARRAY['checkout','account','admin','import'])[1 + g % 4],
           'bench: form v3, checkbox "share with Clerk"', now()
    FROM generate_series(1, {customers}) AS g, generate_series(1, 2) AS k
    WHERE (g % 20 <= 7 AND k = 1) OR (g % 20 IN (8, 9))
    """,
    """
    INSERT INTO gdpr_consentrecord (customer_id, purpose, granted, at, source, evidence, recorded_at)
    SELECT g, 'marketing', g % 3 = 0,
           now() - make_interval(days => (10 + {hg} % 900)::int),
           'account', 'bench: newsletter checkbox', now()
    FROM generate_series(1, {customers}) AS g
    WHERE g % 3 = 0 OR (g % 3 = 1 AND g % 7 = 0)
    """,
    # Orders over four years; 10% guests (g % 10 = 0), 70% of them with terms accepted at checkout.
    """
    INSERT INTO shop_order (id, updated_at, customer_id, email, email_key, placed_at, terms_accepted_at,
                            erased_at)
    SELECT g, placed, cust, address, address, placed,
           CASE WHEN cust IS NULL AND g % 100 >= 70 THEN NULL ELSE placed END,
           NULL
    FROM (
      SELECT g, cust, placed,
             CASE WHEN cust IS NULL THEN 'guest' || g || '@example.com'
                  ELSE 'customer' || cust || '@example.com' END AS address
      FROM (
        SELECT g,
               CASE WHEN g % 10 = 0 THEN NULL ELSE 1 + {hg} % {customers} END AS cust,
               now() - make_interval(days => ({hg2} % 1460)::int, secs => ({hg} % 86400)::int) AS placed
        FROM generate_series(1, {orders}) AS g
      ) AS n
    ) AS o
    """,
    # 1-4 lines per order, products spread over the whole catalogue.
    """
    INSERT INTO shop_orderline (order_id, product_id, quantity, unit_price)
    SELECT g, 2 * (1 + (g * 31 + k * 977) % {products}), 1 + (g + k) % 3,
           round((5 + ((g * 31 + k * 977) % 50000) / 100.0)::numeric, 2)
    FROM generate_series(1, {orders}) AS g, generate_series(1, 4) AS k
    WHERE k <= 1 + (g * 7) % 4
    """,
]

PAGES_SQL = [
    """
    INSERT INTO shop_page (id, updated_at, translations, type, url, title, text, image, attributes)
    SELECT g, now() - make_interval(days => g % 300), '{{}}'::jsonb,
           (ARRAY['cms','blog','landing'])[1 + g % 3],
           'https://shop.example/page/' || g, 'Page ' || g,
           'Some text for page ' || g || ', as a shop writes it: returns, shipping, stories.',
           '', '{{}}'::jsonb
    FROM generate_series(1, {pages}) AS g
    """,
]


def groups(scale: Scale) -> list[tuple[str, dict[str, int], list[str]]]:
    """(name, {table: expected rows}, statements) for each group of tables built together."""
    return [
        (
            "catalogue",
            {
                "shop_category": scale.categories,
                "shop_product": scale.products,
                "shop_productcategory": scale.product_categories(),
            },
            CATALOGUE_SQL,
        ),
        (
            "people",
            {
                "shop_customer": scale.customers,
                "shop_customeremail": scale.customers - (scale.customers + 1) // 100,  # g % 100 = 99 erased
                "gdpr_consentrecord": scale.consent_records(),
                "shop_order": scale.orders,
                "shop_orderline": scale.order_lines(),
            },
            PEOPLE_SQL,
        ),
        ("pages", {"shop_page": scale.pages}, PAGES_SQL),
    ]


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    params = conninfo_to_dict(url)
    name = params["dbname"]
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")


def migrate(url: str) -> None:
    """Bring the schema to the project's migrations (the benchmark never invents tables)."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "clerkfeeds.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=env,
        check=True,
    )


def counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in tables}


def build(url: str, scale: Scale, *, force: bool = False) -> bool:
    """Make the database hold exactly `scale`'s data. Returns True when anything was rebuilt."""
    ensure_database(url)
    migrate(url)
    fmt = {**dataclasses.asdict(scale), "hg": h("g"), "hg2": h("g + 7919")}
    rebuilt = False
    with psycopg.connect(url) as conn:
        for name, expected, statements in groups(scale):
            actual = counts(conn, list(expected))
            if actual == expected and not force:
                log(f"{name}: already built ({', '.join(f'{t}={n:,}' for t, n in actual.items())})")
                continue
            started = time.monotonic()
            log(f"{name}: building (found {actual}, want {expected})")
            # Consistent by construction: skip per-row FK triggers (superuser, this session only).
            conn.execute("SET session_replication_role = replica")
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(sql.Identifier(t) for t in expected)))
            for statement in statements:
                t0 = time.monotonic()
                cur = conn.execute(statement.format(**fmt))
                log(f"  {cur.rowcount:>10,} rows in {time.monotonic() - t0:6.1f}s  {first_line(statement)}")
            conn.execute("SET session_replication_role = DEFAULT")
            conn.commit()
            got = counts(conn, list(expected))
            if got != expected:
                raise SystemExit(f"{name}: built {got}, expected {expected}: the formulas disagree")
            log(f"{name}: built in {time.monotonic() - started:.0f}s")
            rebuilt = True
    if rebuilt:
        t0 = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.monotonic() - t0:.0f}s")
    return rebuilt


def first_line(statement: str) -> str:
    return " ".join(statement.split())[:70]


def log(message: str) -> None:
    print(f"[seed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="bench")
    parser.add_argument("--database-url", help="default: clerkfeeds_bench / clerkfeeds_load on 127.0.0.1")
    parser.add_argument("--force", action="store_true", help="rebuild even when the counts match")
    args = parser.parse_args(argv)
    build(args.database_url or DEFAULT_URLS[args.scale], SCALES[args.scale], force=args.force)


if __name__ == "__main__":
    main()
