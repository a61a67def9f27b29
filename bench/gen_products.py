#!/usr/bin/env python3
"""Generate a large, deterministic shop file for measuring `manage.py import_shop`.

    python bench/gen_products.py --products 1000000 --format ndjson --out bench/out/products.ndjson
    python bench/gen_products.py --products 1000000 --format feed --out bench/out/feed.json

Formats: `ndjson` (products, one per line: `import_shop FILE --type products`), `json` (a JSON
array of products: `--type products`), `feed` (the single-feed object: the category tree first,
then the products). The same seed always writes the same bytes. The file is written as it is
generated, so the generator itself runs in constant memory.

Products look like a real catalogue: names from a small vocabulary, prices with cents, one to
three categories out of the ~1,000 leaf and branch categories, a brand, and some extra attributes
(color_names, reviews_avg, stock); one in twenty is kept for history only (`index: false`).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

BASE_URL = "https://shop.example"
CREATED_FROM = 1_420_070_400  # 2015-01-01
CREATED_TO = 1_735_689_600  # 2025-01-01

ADJECTIVES = [
    "Classic",
    "Organic",
    "Compact",
    "Deluxe",
    "Vintage",
    "Urban",
    "Alpine",
    "Coastal",
    "Smart",
    "Handmade",
    "Soft",
    "Sturdy",
    "Light",
    "Premium",
    "Everyday",
    "Rustic",
    "Modern",
    "Tuscan",
]
NOUNS = [
    "Backpack",
    "Kettle",
    "Lamp",
    "Jacket",
    "Sneaker",
    "Teapot",
    "Blanket",
    "Notebook",
    "Chair",
    "Bottle",
    "Scarf",
    "Wallet",
    "Headphones",
    "Mug",
    "Cutting Board",
    "Umbrella",
    "Candle",
    "Vase",
]
MATERIALS = ["cotton", "steel", "oak", "linen", "ceramic", "leather", "wool", "glass", "bamboo"]
BRANDS = ["Arno", "Brera", "Dolomiti", "Etna", "Garda", "Lario", "Monviso", "Sila", "Vesuvio", "Amalfi"]
COLORS = ["red", "blue", "green", "black", "white", "grey", "yellow", "navy", "beige", "olive"]


def category_tree(count: int) -> list[dict]:
    """About `count` categories: 20 departments, each with branches, each with leaves."""
    departments = 20
    per_department = max(1, (count - departments) // departments)
    branches = max(1, int(per_department**0.5))
    leaves = max(0, per_department // branches - 1)
    categories: list[dict] = []
    next_id = 1
    for d in range(departments):
        dept_id = next_id
        next_id += 1
        dept = {"id": dept_id, "name": f"Department {d + 1}", "url": f"{BASE_URL}/c/{dept_id}", "subcategories": []}
        categories.append(dept)
        for b in range(branches):
            branch_id = next_id
            next_id += 1
            dept["subcategories"].append(branch_id)
            branch = {
                "id": branch_id,
                "name": f"Department {d + 1} / Range {b + 1}",
                "url": f"{BASE_URL}/c/{branch_id}",
                "subcategories": [],
            }
            categories.append(branch)
            for _leaf in range(leaves):
                leaf_id = next_id
                next_id += 1
                branch["subcategories"].append(leaf_id)
                categories.append(
                    {
                        "id": leaf_id,
                        "name": f"Department {d + 1} / Range {b + 1} / Line {leaf_id}",
                        "url": f"{BASE_URL}/c/{leaf_id}",
                        "subcategories": [],
                    }
                )
    return categories


def products(count: int, category_ids: list[int], rng: random.Random) -> Iterator[dict]:
    for pid in range(1, count + 1):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {pid}"
        cents = rng.randrange(199, 99_999)
        product = {
            "id": pid,
            "name": name,
            "description": f"{name} in {rng.choice(MATERIALS)}, designed to last. Article {pid}.",
            # A string of digits parsed by the importer as a JSON number: exact cents, no float.
            "price": orjson.Fragment(f"{cents // 100}.{cents % 100:02d}".encode()),
            "image": f"{BASE_URL}/img/{pid}.jpg",
            "url": f"{BASE_URL}/p/{pid}",
            "categories": sorted(rng.sample(category_ids, rng.randint(1, 3))),
            "created_at": rng.randrange(CREATED_FROM, CREATED_TO),
            "brand": rng.choice(BRANDS),
            "color_names": rng.sample(COLORS, rng.randint(1, 3)),
            "reviews_avg": orjson.Fragment(f"{rng.randint(10, 50) / 10:.1f}".encode()),
            "stock": rng.randrange(0, 500),
        }
        if rng.random() < 0.3:
            list_cents = cents + rng.randrange(100, 5_000)
            product["list_price"] = orjson.Fragment(f"{list_cents // 100}.{list_cents % 100:02d}".encode())
        if rng.random() < 0.05:
            product["index"] = False
        yield product


def write(out, fmt: str, count: int, category_count: int, seed: int) -> None:
    rng = random.Random(seed)
    categories = category_tree(category_count)
    category_ids = [c["id"] for c in categories]
    dump = orjson.dumps
    if fmt == "ndjson":
        for product in products(count, category_ids, rng):
            out.write(dump(product))
            out.write(b"\n")
        return
    if fmt == "feed":
        out.write(b'{"categories":[')
        out.write(b",\n".join(dump(c) for c in categories))
        out.write(b'],\n"products":[\n')
    else:
        out.write(b"[\n")
    first = True
    for product in products(count, category_ids, rng):
        if not first:
            out.write(b",\n")
        out.write(dump(product))
        first = False
    out.write(b"\n]}\n" if fmt == "feed" else b"\n]\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=1_000, help="about this many categories")
    parser.add_argument("--format", choices=["ndjson", "json", "feed"], default="ndjson")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out", default="-", help="file to write, '-' for stdout")
    args = parser.parse_args(argv)
    if args.out == "-":
        write(sys.stdout.buffer, args.format, args.products, args.categories, args.seed)
    else:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb", buffering=1 << 20) as out:
            write(out, args.format, args.products, args.categories, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
