"""`shop.0004_person_emails` on a database made before it: keys computed with casefold, each live
customer's current email as their history, nothing for erased rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("shop", "0003_fast_json_fields")]
AFTER = [("shop", "0004_person_emails")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def test_the_migration_fills_keys_and_history_for_existing_rows():
    old = migrate(BEFORE)
    try:
        Customer, Order = old.get_model("shop", "Customer"), old.get_model("shop", "Order")
        registered = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
        Customer.objects.create(id=1, name="Élise", email="Élise.Obj@Example.com", registered_at=registered)
        Customer.objects.create(id=2, name="Bo", email="BO@example.com")
        Customer.objects.create(id=3, email="", erased_at=registered)
        Customer.objects.create(id=4, email="")
        placed = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
        Order.objects.create(id=10, email="STRAßE@example.com", placed_at=placed)
        Order.objects.create(id=11, customer_id=2, email="Bo@Example.COM", placed_at=placed)
        Order.objects.create(id=12, email="", placed_at=placed)

        new = migrate(AFTER)
        Customer, Order = new.get_model("shop", "Customer"), new.get_model("shop", "Order")
        CustomerEmail = new.get_model("shop", "CustomerEmail")
        assert dict(Customer.objects.values_list("pk", "email_key")) == {
            1: "élise.obj@example.com",
            2: "bo@example.com",
            3: "",
            4: "",
        }
        assert dict(Order.objects.values_list("pk", "email_key")) == {
            10: "strasse@example.com",
            11: "bo@example.com",
            12: "",
        }
        history = CustomerEmail.objects.order_by("customer_id").values_list(
            "customer_id", "email", "email_key", "first_seen"
        )
        assert [row[:3] for row in history] == [
            (1, "Élise.Obj@Example.com", "élise.obj@example.com"),
            (2, "BO@example.com", "bo@example.com"),
        ]
        assert history[0][3] == registered
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
