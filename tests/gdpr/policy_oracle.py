"""An independent, test-side statement of DESIGN.md's GDPR policy, in plain Python.

It is written from DESIGN.md ("GDPR policy"), not from gdpr/policy.py, and reads nothing but
plain values, so the property tests compare two separate statements of the same rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

SHARING = "third_party_sharing"
MARKETING = "marketing"
# DESIGN.md: "a time more than a day in the future" makes nothing recent.
FUTURE_SLACK = dt.timedelta(days=1)


def same_email(a: str, b: str) -> bool:
    """One person's email: compared for every letter as Python's str.casefold() does; a blank
    email is nobody's."""
    a, b = a.strip().casefold(), b.strip().casefold()
    return bool(a) and a == b


def in_window(t: dt.datetime, *, now: dt.datetime, days: int) -> bool:
    return now - dt.timedelta(days=days) <= t <= now + FUTURE_SLACK


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
    previous_emails: list[str] = field(default_factory=list)  # the emails it had before `email`

    @property
    def emails(self) -> list[str]:
        """Every email the person has had; an erased person has none left to link."""
        return [] if self.erased else [*self.previous_emails, self.email]


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
    # Recent: registered or ordered within the window, and never later than a day from now.
    return in_window(p.registered_at, now=now, days=days) or any(
        in_window(o.placed_at, now=now, days=days) for o in purchases if o.customer is p
    )


def objected(p: Person) -> bool:
    return latest_state(p, SHARING) is False


def order_in_feed(o: Purchase, purchases: list[Purchase], *, people: list[Person], now, purpose, days) -> bool:
    if o.erased or not in_window(o.placed_at, now=now, days=days):
        return False
    if o.customer is None:
        # A guest order counts by the checkout terms, unless the person behind its email (a
        # customer who has ever had it, casefolded) objected: the objection covers the person.
        same_person = [p for p in people if any(same_email(e, o.email) for e in p.emails)]
        return (
            purpose == "personalisation"
            and o.terms_accepted_at is not None
            and not any(objected(p) for p in same_person)
        )
    return customer_in_feed(o.customer, purchases, now=now, purpose=purpose, days=days)


def subscribed(p: Person) -> bool:
    return latest_state(p, MARKETING) is True
