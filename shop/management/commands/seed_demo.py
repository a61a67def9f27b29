"""`manage.py seed_demo`: fill the database with the demo shop (`shop.demo`).

The demo goes through the same path as real data: the shop import service with the consent
ledger registered through `shop.consent_hook`, then the ledger's `erase` for the customer the
demo erases. Without a registered ledger it refuses to run (exit 1, nothing written).
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shop.change_hook import import_run
from shop.consent_hook import consent_ledger
from shop.demo import MIN_CUSTOMERS, build_demo
from shop.importing import import_objects
from shop.models import Customer, Order
from shop.validation import Problem


class Command(BaseCommand):
    help = (
        "Seed a realistic demo shop: a category tree, products and pages in Italian and English, "
        "customers covering every consent case of the GDPR policy (one of them erased), orders old "
        "and new, guests with and without terms. Deterministic: the same options give the same "
        "shop, and seeding again on the same day changes nothing (times are counted in days back "
        "from today). Exit status: 0 seeded, 1 something was rejected or bad options."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=120, help="number of products (default 120)")
        parser.add_argument(
            "--customers",
            type=int,
            default=40,
            help=f"number of customers (default 40, at least {MIN_CUSTOMERS}: one per consent case)",
        )
        parser.add_argument("--orders", type=int, default=200, help="number of orders (default 200)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")

    def handle(self, *args, products, customers, orders, seed, **options):
        if products < 1 or orders < 0:
            raise CommandError("--products must be at least 1 and --orders at least 0")
        if customers < MIN_CUSTOMERS:
            raise CommandError(f"--customers must be at least {MIN_CUSTOMERS} (one per consent case)")
        ledger = consent_ledger()
        if ledger is None:
            raise CommandError(
                "the demo holds customers, consents and an erasure: it needs consent handling, and no "
                "consent ledger is registered (shop.consent_hook); nothing was seeded"
            )
        today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        demo = build_demo(anchor=today, products=products, customers=customers, orders=orders, seed=seed)
        # An erased person is never imported again (the importer refuses it): leave them out.
        erased = set(Customer.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
        erased_orders = set(Order.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
        demo.sections["customers"] = [c for c in demo.sections["customers"] if c["id"] not in erased]
        demo.sections["orders"] = [o for o in demo.sections["orders"] if o["id"] not in erased_orders]
        reporter = _Collect()
        # A seeded shop is a first import: the run's threshold pushes none of it (docs/clerk.md).
        with import_run() as pushes:
            result = import_objects(demo.sections, reporter=reporter, ledger=ledger)
        newly_erased = 0
        for customer_id in demo.erase:
            if customer_id not in erased:
                ledger.erase(customer_id, reference="seed_demo")
                newly_erased += 1
        for line in reporter.lines:
            self.stderr.write(line)
        self.stdout.write(f"seed_demo: {result.summary()}; {newly_erased} customer(s) erased")
        for line in pushes.lines:
            self.stdout.write(f"push: {line}")
        if result.rejected:
            raise CommandError(f"{result.rejected} demo object(s) rejected (see above)")


class _Collect:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def rejected(self, type_name: str, where: str, object_id: int | None, problems: list[Problem]) -> None:
        self.lines.append(f"rejected {type_name} at {where} (id {object_id}): " + "; ".join(map(str, problems)))

    def warning(self, message: str) -> None:
        self.lines.append(f"warning: {message}")
