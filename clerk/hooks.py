"""What the outbox needs from the layers above clerk, registered from their AppConfig.ready.

    on_deletions_queued(object_type, hook)   hook(object_type=, ids=) in the queueing transaction
    serves(object_type, hook)                hook(object_type=, ids=, now=) -> ids in the feeds now
    renders(hook)                            hook(object_type=, ids=, now=) -> {id: JSON bytes}
    reconciles_with(hook)                    hook() -> report: the worker's periodic pass
    served_ids(object_type, ids, now=), rendered(object_type, ids, now=)   what delivery asks

One hook per slot (registering again replaces it); a missing one raises `HookMissing` when a
personal type is queued or delivered, or a push rendered (fail closed). See docs/clerk.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from clerk.models import PERSONAL_TYPES, ObjectType
from shop.models import Category, Page, Product


class QueuedHook(Protocol):
    def __call__(self, *, object_type: str, ids: Iterable[int]) -> None: ...


class ServedHook(Protocol):
    def __call__(self, *, object_type: str, ids: Collection[int], now: dt.datetime) -> Iterable[int]: ...


class RenderHook(Protocol):
    def __call__(self, *, object_type: str, ids: Collection[int], now: dt.datetime) -> dict[int, bytes]: ...


class HookMissing(RuntimeError):
    """A personal type's hook was never registered: nothing is queued, dropped or sent."""


CATALOGUE = {ObjectType.PRODUCTS: Product, ObjectType.CATEGORIES: Category, ObjectType.PAGES: Page}

_queued: dict[str, QueuedHook] = {}
_served: dict[str, ServedHook] = {}
_reconcile: list[Callable[[], object]] = []
_render: list[RenderHook] = []


def on_deletions_queued(object_type: str, hook: QueuedHook) -> None:
    _check_personal(object_type)
    _queued[object_type] = hook


def serves(object_type: str, hook: ServedHook) -> None:
    _check_personal(object_type)
    _served[object_type] = hook


def reconciles_with(hook: Callable[[], object]) -> None:
    _reconcile[:] = [hook]


def renders(hook: RenderHook) -> None:
    _render[:] = [hook]


def rendered(object_type: str, ids: Collection[int], *, now: dt.datetime) -> dict[int, bytes]:
    """The feed objects of those of `ids` the feeds serve now, as JSON bytes by id; an id left
    out is not in the feeds. The hook records personal ones as held by Clerk before returning."""
    if not _render:
        raise HookMissing("no renders() hook registered for pushes: refusing to go on")
    return _render[0](object_type=object_type, ids=ids, now=now)


def deletions_queued(object_type: str, ids: list[int]) -> None:
    """Tell the layer above that `ids` are queued for deletion (inside the caller's transaction)."""
    if object_type in PERSONAL_TYPES:
        _hook(_queued, object_type, "on_deletions_queued")(object_type=object_type, ids=ids)


def served_ids(object_type: str, ids: Collection[int], *, now: dt.datetime) -> set[int]:
    """Those of `ids` the feeds serve now: catalogue rows that exist, personal ones the hook admits."""
    if object_type in CATALOGUE:
        return set(CATALOGUE[object_type].objects.filter(pk__in=ids).values_list("pk", flat=True))
    hook = _hook(_served, object_type, "serves")
    return set(hook(object_type=object_type, ids=ids, now=now))


def reconciliation() -> Callable[[], object] | None:
    """The registered periodic pass, or None when no layer registered one."""
    return _reconcile[0] if _reconcile else None


def _hook(slots: dict, object_type: str, register: str):
    try:
        return slots[object_type]
    except KeyError:
        raise HookMissing(f"no {register}() hook registered for {object_type!r}: refusing to go on") from None


def _check_personal(object_type: str) -> None:
    if object_type not in PERSONAL_TYPES:
        raise ValueError(f"hooks are registered for the personal types {PERSONAL_TYPES}, not {object_type!r}")
