"""The consent ledger's part of the shop import (`shop.importing` cannot import gdpr).

`LedgerForImport` is what `manage.py import_shop` and `manage.py seed_demo` hand to the import
service (`shop.importing.ConsentLedger`):

* `check` applies the ledger's rules to one imported consent entry (known purpose and source,
  not in the future), so a bad entry rejects its customer row instead of failing a batch;
* `guard` wraps each batch of customers or orders in `gdpr.membership.queue_feed_exits`, so an
  import that takes a customer or an order out of the feeds queues its Clerk deletion in the
  same transaction;
* `append` adds the consents the ledger does not hold yet, through `gdpr.ledger.record_consents`.
  Idempotent: a record with the same customer, purpose, granted, time and source is never added
  twice (the evidence of an existing record cannot change: the ledger is append-only). It returns
  the customers whose consent state (the latest record per purpose, `gdpr.policy`) changed; the
  importer moves their `updated_at` unless the file gave one, and the orders of customers whose
  sharing consent changed get a new `updated_at` here (their eligibility follows it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager

from django.utils import timezone

from gdpr.batching import chunked
from gdpr.ledger import MAX_CLOCK_SKEW, ConsentChange, record_consents
from gdpr.membership import CHUNK, queue_feed_exits
from gdpr.models import ConsentRecord, Purpose, Reason, Source
from gdpr.policy import with_consent_state
from shop.models import Customer, Order
from shop.validation import ConsentData

State = tuple[bool | None, bool | None]  # (sharing, marketing): latest grant/withdrawal or None


class LedgerForImport:
    """The `shop.importing.ConsentLedger` backed by the consent ledger."""

    def check(self, purpose: str, source: str, at: dt.datetime) -> list[tuple[str, str]]:
        problems = []
        if purpose not in Purpose.values:
            problems.append(("purpose", f"unknown consent purpose {purpose!r}: use {' or '.join(Purpose.values)}"))
        if source not in Source.values:
            problems.append(("source", f"unknown consent source {source!r}: use {', '.join(Source.values)}"))
        if at > timezone.now() + MAX_CLOCK_SKEW:
            # A record dated later would outrank every real one until then.
            problems.append(("at", "lies in the future"))
        return problems

    def guard(self, customer_ids: Collection[int]) -> AbstractContextManager:
        return queue_feed_exits(customer_ids, reason=Reason.LEFT_FEED)

    def append(self, consents: Sequence[tuple[int, ConsentData]]) -> set[int]:
        customer_ids = sorted({customer_id for customer_id, _ in consents})
        held = _held_records(customer_ids)
        changes: list[ConsentChange] = []
        for customer_id, consent in consents:
            key = (customer_id, consent.purpose, consent.granted, consent.at, consent.source)
            if key in held:
                continue
            held.add(key)
            changes.append(
                ConsentChange(
                    customer_id=customer_id,
                    purpose=consent.purpose,
                    granted=consent.granted,
                    at=consent.at,
                    source=consent.source,
                    evidence=consent.evidence,
                )
            )
        if not changes:
            return set()
        touched = sorted({c.customer_id for c in changes})
        before = _states(touched)
        # touch=False: the importer decides `updated_at` (the file's own time wins).
        record_consents(changes, touch=False)
        after = _states(touched)
        changed = {cid for cid in touched if before[cid] != after[cid]}
        sharing_changed = [cid for cid in changed if before[cid][0] != after[cid][0]]
        now = timezone.now()
        for batch in chunked(sharing_changed, CHUNK):
            Order.objects.filter(customer_id__in=batch).update(updated_at=now)
        return changed


def _held_records(customer_ids: list[int]) -> set[tuple]:
    held: set[tuple] = set()
    for batch in chunked(customer_ids, CHUNK):
        held.update(
            ConsentRecord.objects.filter(customer_id__in=batch).values_list(
                "customer_id", "purpose", "granted", "at", "source"
            )
        )
    return held


def _states(customer_ids: list[int]) -> dict[int, State]:
    states: dict[int, State] = {}
    for batch in chunked(customer_ids, CHUNK):
        rows = with_consent_state(Customer.objects.filter(pk__in=batch)).values_list(
            "pk", "sharing_consent", "marketing_consent"
        )
        states.update((pk, (sharing, marketing)) for pk, sharing, marketing in rows)
    return states
