"""The order of operations as a property: whatever the interleaving of saves, deletions and a
worker's claims, sends and acknowledgements, once the outbox is drained Clerk holds exactly the
shop's products, each as the feed renders it now (the latest intent of every object won)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from clerk import delivery
from clerk.client import get_client
from clerk.delivery import claim_batch, deliver_pending
from clerk.hooks import rendered
from shop.models import Product

IDS = [1, 2, 3]

step_st = st.one_of(
    st.tuples(st.just("save"), st.sampled_from(IDS), st.integers(1, 5)),
    st.tuples(st.just("delete"), st.sampled_from(IDS)),
    st.tuples(st.just("claim")),  # a worker claims a batch (rendered, in flight)
    st.tuples(st.just("send")),  # the oldest claim in flight reaches Clerk
    st.tuples(st.just("ack")),  # ... and is acknowledged
    st.tuples(st.just("deliver")),  # a whole pass of the worker
)


class ClerksCatalogue:
    def __init__(self) -> None:
        self.products: dict[int, dict] = {}
        self.seen = 0

    def receive(self, calls) -> None:
        for call in calls[self.seen :]:
            if call.path != "/products":
                continue
            if call.method == "POST":
                for obj in call.body["products"]:
                    self.products[obj["id"]] = obj
            elif call.method == "DELETE":
                for pk in json.loads(call.query["products"][0]):
                    self.products.pop(pk, None)
        self.seen = len(calls)


class TestOrderOfOperations(TestCase):
    @pytest.fixture(autouse=True)
    def _clerk(self, fake_clerk):
        self.fake_clerk = fake_clerk

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(step_st, min_size=1, max_size=14))
    def test_clerk_ends_with_the_latest_intent_of_every_object(self, steps):
        self.fake_clerk.reset()
        clerk = ClerksCatalogue()
        client = get_client()
        in_flight: list[tuple[delivery.Claim, bool]] = []  # (claim, sent)
        with override_settings(CLERK_PUSH="catalogue"):
            for step in steps:
                note(f"step {step}")
                kind = step[0]
                if kind == "save":
                    _, pk, price = step
                    product = Product.objects.filter(pk=pk).first() or Product(
                        pk=pk, name=f"P{pk}", url=f"https://s.example/{pk}", created_at=timezone.now()
                    )
                    product.price = Decimal(price)
                    product.save()
                elif kind == "delete":
                    Product.objects.filter(pk=step[1]).delete()
                elif kind == "claim":
                    claim = claim_batch(now=timezone.now())
                    if claim is not None and claim.rows:
                        in_flight.append((claim, False))
                elif kind == "send" and in_flight:
                    claim, sent = in_flight[0]
                    if not sent:
                        delivery._send(client, claim)
                        in_flight[0] = (claim, True)
                elif kind == "ack" and in_flight and in_flight[0][1]:
                    claim, _ = in_flight.pop(0)
                    delivery.acknowledge(claim, now=timezone.now())
                elif kind == "deliver":
                    deliver_pending()
            # The worker of every unacknowledged claim died; their leases end; one last pass.
            in_flight.clear()
            later = timezone.now() + delivery.LEASE * 2
            deliver_pending(clock=lambda: later)
            clerk.receive(self.fake_clerk.state.calls)
            ids = sorted(Product.objects.values_list("pk", flat=True))
            expected = {pk: json.loads(body) for pk, body in rendered("products", ids, now=timezone.now()).items()}
            assert clerk.products == expected
