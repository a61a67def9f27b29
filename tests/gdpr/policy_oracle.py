"""An independent, test-side statement of DESIGN.md's GDPR policy, in plain Python.

It is written from DESIGN.md ("GDPR policy"), not from gdpr/policy.py, and reads nothing but
plain values, so the property tests compare two separate statements of the same rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

SHARING = "third_party_sharing"
MARKETING = "marketing"


@dataclass
class Consent:
    purpose: str
    granted: bool
    at: dt.datetime
    seq: int  # insertion order


@dataclass
class Person:
    id: int
    registered_at: dt.datetime | None
    terms_accepted_at: dt.datetime | None
    erased: bool
    email: str = ""
    consents: list[Consent] = field(default_factory=list)


@dataclass
class Purchase:
    id: int
    customer: Person | None
    placed_at: dt.datetime
    terms_accepted_at: dt.datetime | None
    erased: bool
    email: str = ""


def latest_state(person: Person, purpose: str) -> bool | None:
    """The latest record by time; a withdrawal wins a tie (fail closed), then the later one."""
    records = [c for c in person.consents if c.purpose == purpose]
    if not records:
        return None
    return max(records, key=lambda c: (c.at, not c.granted, c.seq)).granted


def customer_in_feed(p: Person, purchases: list[Purchase], *, now, purpose, days) -> bool:
    window_start = now - dt.timedelta(days=days)
    if p.erased:
        return False
    sharing = latest_state(p, SHARING)
    if sharing is True:
        return True  # explicit consent is a ground on its own, whatever the data's age
    if sharing is False:
        return False  # an objection beats the contract
    if purpose != "personalisation":
        return False  # marketing needs explicit consent
    if p.registered_at is None or p.terms_accepted_at is None:
        return False  # no contract
    last_order = max((o.placed_at for o in purchases if o.customer is p), default=None)
    return p.registered_at >= window_start or (last_order is not None and last_order >= window_start)


def objected(p: Person) -> bool:
    return latest_state(p, SHARING) is False


def order_in_feed(o: Purchase, purchases: list[Purchase], *, people: list[Person], now, purpose, days) -> bool:
    if o.erased or o.placed_at < now - dt.timedelta(days=days):
        return False
    if o.customer is None:
        # A guest order counts by the checkout terms, unless the person behind its email (a
        # customer with that email, in any case) objected: the objection covers the person.
        same_person = [p for p in people if o.email and p.email.lower() == o.email.lower()]
        return (
            purpose == "personalisation"
            and o.terms_accepted_at is not None
            and not any(objected(p) for p in same_person)
        )
    return customer_in_feed(o.customer, purchases, now=now, purpose=purpose, days=days)


def subscribed(p: Person) -> bool:
    return latest_state(p, MARKETING) is True
