"""A small, realistic, deterministic demo shop, built as import objects.

`build_demo(...)` returns the objects of an Italian homeware shop in the import's shape
(`shop.importing.import_objects`): a category tree, products and pages in Italian and English,
customers covering every case of the GDPR policy (`PERSONAS`), and orders old and new, from
customers and from guests. The same arguments always give the same objects (a seeded random
generator; times are whole days before `anchor`), so seeding twice on one day changes nothing.

See docs/import.md ("The demo shop") for the personas and what each shows.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

BASE_URL = "https://demo.clerkfeeds.example"
DELETED_PRODUCT_IDS = range(900_001, 900_006)

PERSONAS = (
    "explicit_consent",
    "objection",
    "contract_recent",
    "contract_old",
    "no_contract",
    "marketing_granted",
    "marketing_withdrawn",
    "erased",
)
MIN_CUSTOMERS = len(PERSONAS)

# (id, italian, english, parent id)
CATEGORIES = (
    (1, "Casa", "Home", None),
    (2, "Cucina", "Kitchen", None),
    (3, "Abbigliamento", "Clothing", None),
    (4, "Outdoor", "Outdoor", None),
    (11, "Illuminazione", "Lighting", 1),
    (12, "Tessili", "Textiles", 1),
    (13, "Decorazioni", "Decor", 1),
    (21, "Pentole", "Cookware", 2),
    (22, "Utensili", "Utensils", 2),
    (23, "Tè e caffè", "Tea and coffee", 2),
    (31, "Giacche", "Jackets", 3),
    (32, "Maglieria", "Knitwear", 3),
    (33, "Accessori", "Accessories", 3),
    (41, "Zaini", "Backpacks", 4),
    (42, "Campeggio", "Camping", 4),
)

# leaf category -> (italian noun, english noun)
NOUNS = {
    11: (("Lampada da tavolo", "table lamp"), ("Applique", "wall light"), ("Lanterna", "lantern")),
    12: (("Plaid", "throw"), ("Cuscino", "cushion"), ("Tovaglia", "tablecloth")),
    13: (("Vaso", "vase"), ("Candela", "candle"), ("Cornice", "photo frame")),
    21: (("Padella", "frying pan"), ("Casseruola", "saucepan"), ("Moka", "moka pot")),
    22: (("Tagliere", "cutting board"), ("Mestolo", "ladle"), ("Grattugia", "grater")),
    23: (("Teiera", "teapot"), ("Tazza", "mug"), ("Macinacaffè", "coffee grinder")),
    31: (("Giacca a vento", "windbreaker"), ("Piumino", "down jacket"), ("Impermeabile", "raincoat")),
    32: (("Maglione", "sweater"), ("Cardigan", "cardigan"), ("Sciarpa", "scarf")),
    33: (("Cappello", "hat"), ("Guanti", "gloves"), ("Cintura", "belt")),
    41: (("Zaino", "backpack"), ("Marsupio", "hip bag"), ("Borsa da viaggio", "travel bag")),
    42: (("Tenda", "tent"), ("Sacco a pelo", "sleeping bag"), ("Borraccia", "water bottle")),
}
MATERIALS = (
    ("ceramica", "ceramic"),
    ("lino", "linen"),
    ("lana", "wool"),
    ("acciaio", "steel"),
    ("rovere", "oak"),
    ("cotone", "cotton"),
    ("vetro", "glass"),
    ("bambù", "bamboo"),
)
BRANDS = ("Arno", "Brera", "Dolomiti", "Etna", "Garda", "Lario", "Monviso", "Vesuvio")
COLORS = ("red", "blue", "green", "black", "white", "grey", "yellow", "navy", "beige", "olive")

PAGES = (
    ("cms", "Chi siamo", "About us", "Siamo una piccola bottega di Bologna.", "We are a small shop in Bologna."),
    ("cms", "Spedizioni", "Shipping", "Spediamo in tutta Europa in 48 ore.", "We ship across Europe within 48 hours."),
    (
        "cms",
        "Resi e rimborsi",
        "Returns and refunds",
        "Hai 30 giorni per cambiare idea.",
        "You have 30 days to change your mind.",
    ),
    ("cms", "Privacy", "Privacy policy", "Come trattiamo i tuoi dati.", "How we handle your data."),
    (
        "blog",
        "Come scegliere una moka",
        "How to choose a moka pot",
        "Alluminio o acciaio? Dipende dal fornello.",
        "Aluminium or steel? It depends on your stove.",
    ),
    (
        "blog",
        "Campeggio leggero",
        "Light camping",
        "Tre regole per uno zaino sotto i 7 kg.",
        "Three rules for a pack under 7 kg.",
    ),
    ("blog", "Cura della lana", "Caring for wool", "Lavare a mano, asciugare in piano.", "Hand wash, dry flat."),
)

FIRST_NAMES = (
    "Giulia",
    "Marco",
    "Francesca",
    "Luca",
    "Chiara",
    "Matteo",
    "Sara",
    "Alessandro",
    "Elena",
    "Davide",
    "Martina",
    "Lorenzo",
    "Anna",
    "Niccolò",
    "Federica",
    "Tommaso",
)
LAST_NAMES = (
    "Rossi",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
)

SHARING_EVIDENCE = "Account page: ticked 'Share my purchases with Clerk.io for personalised suggestions' (form v3)"
WITHDRAWAL_EVIDENCE = "Account page: unticked the sharing box (form v3)"
MARKETING_EVIDENCE = "Checkout: ticked 'Send me the newsletter' (form v2)"
UNSUBSCRIBE_EVIDENCE = "Newsletter footer: unsubscribe link"


@dataclass
class DemoShop:
    sections: dict[str, list[dict]] = field(default_factory=dict)
    erase: list[int] = field(default_factory=list)  # customer ids to erase after the import


def build_demo(
    *, anchor: dt.datetime, products: int = 120, customers: int = 40, orders: int = 200, seed: int = 7
) -> DemoShop:
    """The demo shop's objects (docs/import.md, "The demo shop")."""
    if customers < MIN_CUSTOMERS:
        raise ValueError(f"the demo needs at least {MIN_CUSTOMERS} customers to show every consent case")
    rng = random.Random(seed)
    day0 = int(anchor.timestamp())

    def days_ago(days: int) -> int:
        return day0 - days * 86_400

    shop = DemoShop()
    shop.sections["categories"] = _categories()
    shop.sections["products"] = _products(rng, products, days_ago)
    shop.sections["pages"] = _pages(days_ago)
    people, personas = _customers(rng, customers, days_ago)
    shop.sections["customers"] = people
    shop.erase = [c["id"] for c, persona in zip(people, personas, strict=True) if persona == "erased"]
    product_ids = [p["id"] for p in shop.sections["products"]]
    shop.sections["orders"] = _orders(rng, orders, people, personas, product_ids, days_ago)
    return shop


def _texts(italian: str, english: str) -> dict[str, str]:
    # Italian first: the shop's own language is the base text when no languages are configured.
    return {"italian": italian, "english": english}


def _categories() -> list[dict]:
    children: dict[int, list[int]] = {}
    for cid, _, _, parent in CATEGORIES:
        if parent is not None:
            children.setdefault(parent, []).append(cid)
    return [
        {
            "id": cid,
            "name": _texts(italian, english),
            "url": _texts(f"{BASE_URL}/it/c/{cid}", f"{BASE_URL}/en/c/{cid}"),
            "subcategories": children.get(cid, []),
            "description": _texts(f"Tutto per {italian.lower()}.", f"Everything for {english.lower()}."),
        }
        for cid, italian, english, parent in CATEGORIES
    ]


def _products(rng: random.Random, count: int, days_ago) -> list[dict]:
    leaves = sorted(NOUNS)
    parents = {cid: parent for cid, _, _, parent in CATEGORIES}
    objects = []
    for pid in range(1, count + 1):
        leaf = leaves[(pid - 1) % len(leaves)]
        (noun_it, noun_en) = rng.choice(NOUNS[leaf])
        material_it, material_en = rng.choice(MATERIALS)
        brand = rng.choice(BRANDS)
        name_it = f"{noun_it} in {material_it}"
        name_en = f"{material_en.capitalize()} {noun_en}"
        cents = rng.randrange(990, 19_990)
        product = {
            "id": pid,
            "name": _texts(name_it, name_en),
            "description": _texts(
                f"{name_it} di {brand}: pensato per durare, facile da pulire.",
                f"{name_en} by {brand}: built to last, easy to clean.",
            ),
            "price": Decimal(cents) / 100,
            "image": f"{BASE_URL}/img/p/{pid}.jpg",
            "url": _texts(f"{BASE_URL}/it/p/{pid}", f"{BASE_URL}/en/p/{pid}"),
            "categories": [leaf, parents[leaf]],
            "created_at": days_ago(rng.randrange(20, 1_500)),
            "brand": brand,
            "color_names": sorted(rng.sample(COLORS, rng.randint(1, 3))),
            "reviews_amount": rng.randrange(0, 250),
            "reviews_avg": round(rng.uniform(3.0, 5.0), 1),
            "stock": rng.randrange(0, 80),
        }
        if rng.random() < 0.25:
            product["list_price"] = Decimal(cents + rng.randrange(200, 3_000)) / 100
        if pid % 12 == 0:
            # Discontinued: Clerk keeps its sales history but never shows it.
            product["index"] = False
        objects.append(product)
    return objects


def _pages(days_ago) -> list[dict]:
    pages = []
    for pid, (kind, title_it, title_en, text_it, text_en) in enumerate(PAGES, start=1):
        slug = _slug(title_en)
        page = {
            "id": pid,
            "type": kind,
            "url": _texts(f"{BASE_URL}/it/{kind}/{slug}", f"{BASE_URL}/en/{kind}/{slug}"),
            "title": _texts(title_it, title_en),
            "text": _texts(text_it, text_en),
        }
        if kind == "blog":
            page["image"] = f"{BASE_URL}/img/blog/{slug}.jpg"
            page["published_at"] = days_ago(30 * pid)
        pages.append(page)
    return pages


def _customers(rng: random.Random, count: int, days_ago) -> tuple[list[dict], list[str]]:
    people, personas = [], []
    for cid in range(1, count + 1):
        persona = PERSONAS[cid - 1] if cid <= len(PERSONAS) else rng.choice(PERSONAS[:-1])
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        customer = {
            "id": cid,
            "name": f"{first} {last}",
            "email": f"{_slug(first)}.{_slug(last)}.{cid}@example.com",
            "zip": f"{rng.randrange(10, 98)}{rng.randrange(0, 1000):03d}",
            "gender": rng.choice(("female", "male")) if first[-1] in "ao" else "other",
        }
        if rng.random() < 0.5:
            customer["age"] = rng.randrange(19, 80)
        else:
            year = rng.randrange(1950, 2004)
            customer["birth_date"] = f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        if rng.random() < 0.1:
            customer["is_b2b"] = True
        registered = rng.randrange(1_200, 1_800) if persona == "contract_old" else rng.randrange(60, 600)
        customer["registered_at"] = days_ago(registered)
        if persona != "no_contract":
            customer["terms_accepted_at"] = days_ago(registered)
        consents = _consents(persona, registered, days_ago)
        if consents:
            customer["consents"] = consents
        people.append(customer)
        personas.append(persona)
    return people, personas


def _consents(persona: str, registered: int, days_ago) -> list[dict]:
    def record(purpose: str, granted: bool, days: int, source: str, evidence: str) -> dict:
        return {"purpose": purpose, "granted": granted, "at": days_ago(days), "source": source, "evidence": evidence}

    sharing, marketing = "third_party_sharing", "marketing"
    if persona in ("explicit_consent", "erased"):
        return [record(sharing, True, registered - 1, "account", SHARING_EVIDENCE)]
    if persona == "objection":
        return [
            record(sharing, True, registered - 1, "account", SHARING_EVIDENCE),
            record(sharing, False, 20, "account", WITHDRAWAL_EVIDENCE),
        ]
    if persona == "marketing_granted":
        return [record(marketing, True, registered, "checkout", MARKETING_EVIDENCE)]
    if persona == "marketing_withdrawn":
        return [
            record(marketing, True, registered, "checkout", MARKETING_EVIDENCE),
            record(marketing, False, 30, "account", UNSUBSCRIBE_EVIDENCE),
        ]
    return []


def _orders(
    rng: random.Random, count: int, people: list[dict], personas: list[str], product_ids: list[int], days_ago
) -> list[dict]:
    objects = []
    for oid in range(1, count + 1):
        order: dict = {"id": 10_000 + oid}
        if oid % 7 == 0:
            order["email"] = f"guest.{oid}@example.com"
            placed = rng.randrange(5, 1_400)
            if (oid // 7) % 2 == 0:
                order["terms_accepted_at"] = days_ago(placed)
        else:
            index = rng.randrange(len(people))
            customer = people[index]
            order["customer"] = customer["id"]
            order["email"] = customer["email"]
            # "Contract but old" must stay old: no order of theirs falls within the window.
            placed = rng.randrange(1_000, 1_600) if personas[index] == "contract_old" else rng.randrange(5, 1_400)
        order["time"] = days_ago(placed)
        lines = []
        for pid in rng.sample(product_ids, min(len(product_ids), rng.randint(1, 3))):
            lines.append({"id": pid, "quantity": rng.randint(1, 3), "price": Decimal(rng.randrange(990, 19_990)) / 100})
        if oid % 25 == 0:
            lines.append({"id": rng.choice(DELETED_PRODUCT_IDS), "quantity": 1, "price": Decimal("24.90")})
        order["products"] = lines
        objects.append(order)
    return objects


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text.lower()).split())
