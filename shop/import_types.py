"""The types the shop import's modules share, so that their imports point one way.

`ConsentLedger` (with its `FeedGuard`): what the import needs from consent handling, the type of
the hook in `shop.consent_hook`. `Reporter`, `Progress`, `ProgressFactory`: what a caller of
`shop.importing` provides. `TypeCounts`: what happened to the objects of one type.
Used by `shop.importing` and `shop.import_writers`; imports neither.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from shop.validation import ConsentData, Problem


class FeedGuard(Protocol):
    """What the `ConsentLedger` guards yield: they move the `updated_at` of what entered the feeds."""

    def keep_times(self, *, customers: Collection[int] = (), orders: Collection[int] = ()) -> None:
        """These objects' `updated_at` was set by the batch itself (the file's or the import's
        time): leave it."""


class ConsentLedger(Protocol):
    """What the import and the demo need from consent handling (implemented in `gdpr.importing`)."""

    def check(self, purpose: str, source: str, at: dt.datetime) -> list[tuple[str, str]]:
        """The ledger's rules for one consent entry: [(field, reason)], [] when it is valid."""

    def guard_customers(
        self, customer_ids: Collection[int], *, emails: Iterable[str]
    ) -> AbstractContextManager[FeedGuard]:
        """Wraps a batch of customers, which may move in or out of the feeds with their orders
        and the guest orders of their emails (as stored, and `emails`, the ones the batch gives)."""

    def guard_orders(
        self, customer_ids: Collection[int], *, guest_order_ids: Iterable[int]
    ) -> AbstractContextManager[FeedGuard]:
        """Wraps a batch of orders, which may move in or out of the feeds with their customers
        (stored and new: a new order makes its customer's data recent). `guest_order_ids`: the
        batch's orders that have or had no customer (the others are read through their customer)."""

    def append(self, consents: Sequence[tuple[int, ConsentData]]) -> set[int]:
        """Append the records the ledger lacks; return the customers whose consent state changed."""

    def marketing_after(self, consents: Mapping[int, Sequence[ConsentData]]) -> dict[int, bool | None]:
        """Per customer: their latest marketing record once their `consents` are appended, a
        grant (True) or a withdrawal (False); None without any (a customer's `subscribed`)."""

    def erase(self, customer_id: int, *, reference: str) -> None:
        """Erase a person (right to erasure), as the demo does with its erased customer."""


class Reporter(Protocol):
    def rejected(self, type_name: str, where: str, object_id: int | None, problems: list[Problem]) -> None:
        """One object was not written, for these reasons."""

    def warning(self, message: str) -> None:
        """Something the user should know that rejected nothing."""


class Progress(Protocol):
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


# (label, total bytes or None) -> a progress bar
ProgressFactory = Callable[[str, int | None], Progress]


@dataclass
class TypeCounts:
    """What happened to the objects of one type."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    kept_erased: int = 0  # rows of erased people: not written, not rejected either

    def add(self, other: TypeCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.kept_erased += other.kept_erased
