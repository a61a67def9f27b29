"""The one hook through which consent handling plugs into the shop's import and demo.

`register_consent_ledger(factory)`: the app that keeps the consent ledger (gdpr, in its
`AppConfig.ready`) names the factory of its `ConsentLedger`; another factory raises.
`consent_ledger()`: a new ledger from the registered factory, or None when none is registered.
`PERSONAL_TYPES`: the types that carry personal data. Without a ledger they are never imported:
`import_shop` refuses a file holding them, `seed_demo` refuses to run (docs/import.md).
"""

from __future__ import annotations

from collections.abc import Callable

from shop.import_types import ConsentLedger

PERSONAL_TYPES = ("customers", "orders")

_factory: Callable[[], ConsentLedger] | None = None


def register_consent_ledger(factory: Callable[[], ConsentLedger]) -> None:
    global _factory
    if _factory is not None and _factory is not factory:
        raise RuntimeError(f"a consent ledger is already registered: {_factory!r}")
    _factory = factory


def consent_ledger() -> ConsentLedger | None:
    return _factory() if _factory is not None else None
