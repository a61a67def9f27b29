"""The consent ledger's side of the shop import and demo: the hook `shop.consent_hook` calls.

`LedgerForImport` implements `shop.import_types.ConsentLedger` over the ledger
(`gdpr.ledger.record_consents`), the feed tracker (`gdpr.membership.track_feed_changes`) and
erasure (`gdpr.erasure.erase_person`); `GdprConfig.ready` registers it. `append` is idempotent
(a record is never added twice) and returns the customers whose consent state changed.
How and why: docs/gdpr.md, "The import hook".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager

from django.utils import timezone

from clerk.batching import chunked
from clerk.models import Reason
from gdpr.erasure import erase_person
from gdpr.ledger import MAX_CLOCK_SKEW, ConsentChange, capped_at, record_consents
from gdpr.membership import CHUNK, track_feed_changes
from gdpr.models import ConsentRecord, Purpose, Source
from gdpr.policy import with_consent_state
from shop.models import Customer, Order
from shop.validation import ConsentData

State = tuple[bool | None, bool | None]  # (sharing, marketing): latest grant/withdrawal or None
RecordKey = tuple[int, str, bool, str]  # customer, purpose, granted, source

Held = list[tuple[dt.datetime, dt.datetime | None]]  # [(at, recorded_at)]; None: from this file

# A capped record's `recorded_at` is written by the same insert, moments after its `at`: a record
# whose two times lie further apart was not capped.
CAP_SLACK = dt.timedelta(seconds=10)


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

    def guard_customers(self, customer_ids: Collection[int], *, emails: Iterable[str]) -> AbstractContextManager:
        # Their consent or email may change: the guest orders of their emails follow them.
        return track_feed_changes(customer_ids, emails=emails, reason=Reason.LEFT_FEED)

    def guard_orders(self, customer_ids: Collection[int], *, guest_order_ids: Iterable[int]) -> AbstractContextManager:
        # Orders change no customer's consent or email: no guest order of another follows them.
        return track_feed_changes(customer_ids, order_ids=guest_order_ids, stored_emails=False, reason=Reason.LEFT_FEED)

    def marketing_after(self, consents: Mapping[int, Sequence[ConsentData]]) -> dict[int, bool | None]:
        customer_ids = sorted(consents)
        held = _held_records(customer_ids)
        # (at, is a withdrawal): the greatest is the latest record; on a tie the withdrawal wins.
        latest: dict[int, tuple[dt.datetime, bool]] = {}

        def note(customer_id: int, at: dt.datetime, granted: bool) -> None:
            if customer_id not in latest or (at, not granted) > latest[customer_id]:
                latest[customer_id] = (at, not granted)

        for (customer_id, purpose, granted, _source), records in held.items():
            if purpose == Purpose.MARKETING:
                for at, _recorded in records:
                    note(customer_id, at, granted)
        now = timezone.now()
        entries = ((cid, consent) for cid in customer_ids for consent in consents[cid])
        for customer_id, consent in _unheld(entries, held):
            if consent.purpose == Purpose.MARKETING:
                note(customer_id, capped_at(consent.at, now), consent.granted)  # as `append` stores it
        return {cid: (not latest[cid][1] if cid in latest else None) for cid in customer_ids}

    def erase(self, customer_id: int, *, reference: str) -> None:
        erase_person(customer_id=customer_id, reference=reference)

    def append(self, consents: Sequence[tuple[int, ConsentData]]) -> set[int]:
        customer_ids = sorted({customer_id for customer_id, _ in consents})
        held = _held_records(customer_ids)
        changes = [
            ConsentChange(
                customer_id=customer_id,
                purpose=consent.purpose,
                granted=consent.granted,
                at=consent.at,
                source=consent.source,
                evidence=consent.evidence,
            )
            for customer_id, consent in _unheld(consents, held)
        ]
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


def _held_records(customer_ids: list[int]) -> defaultdict[RecordKey, Held]:
    """The ledger's records of these customers, by key."""
    held: defaultdict[RecordKey, Held] = defaultdict(list)
    for batch in chunked(customer_ids, CHUNK):
        rows = ConsentRecord.objects.filter(customer_id__in=batch).values_list(
            "customer_id", "purpose", "granted", "source", "at", "recorded_at"
        )
        for customer_id, purpose, granted, source, at, recorded_at in rows:
            held[(customer_id, purpose, granted, source)].append((at, recorded_at))
    return held


def _unheld(
    consents: Iterable[tuple[int, ConsentData]], held: defaultdict[RecordKey, Held]
) -> Iterator[tuple[int, ConsentData]]:
    """The entries the ledger does not hold yet, each once (`held` learns them as they pass)."""
    for customer_id, consent in consents:
        key = (customer_id, consent.purpose, consent.granted, consent.source)
        if not _holds(held[key], consent.at):
            held[key].append((consent.at, None))
            yield customer_id, consent


def _holds(records: Held, claimed: dt.datetime) -> bool:
    """Whether one of these records (same customer, purpose, granted, source) is the entry
    claiming `claimed`: stored at that time, or capped at its recording because `claimed` lay
    ahead of our clock then (`gdpr.ledger.capped_at`). Without the second case, importing the
    file again once `claimed` has passed would add the entry uncapped, and it would outrank
    every record made in between.
    """
    for at, recorded_at in records:
        if at == claimed:
            return True
        capped = recorded_at is not None and at <= recorded_at <= at + CAP_SLACK
        if capped and recorded_at < claimed <= at + MAX_CLOCK_SKEW:
            return True
    return False


def _states(customer_ids: list[int]) -> dict[int, State]:
    states: dict[int, State] = {}
    for batch in chunked(customer_ids, CHUNK):
        rows = with_consent_state(Customer.objects.filter(pk__in=batch)).values_list(
            "pk", "sharing_consent", "marketing_consent"
        )
        states.update((pk, (sharing, marketing)) for pk, sharing, marketing in rows)
    return states
