"""The one hook through which the layers above hear of the shop's changed rows.

`register_change_listener(listener, run=)`: the app that pushes changes to Clerk (clerk, in
its `AppConfig.ready`) names `listener(object_type, ids)`, and `run(push=)`, the context of one
import run (its `lines` say what became of the run's changes once it ends); registering again
replaces them. `objects_changed(object_type, ids)`: the import's writers and the models' saves
call it for rows created or changed (never unchanged ones), inside the writing transaction.
`import_run(push=)`: `import_shop` wraps a run in it. Without a listener both do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

ChangeListener = Callable[[str, Collection[int]], object]


class RunChanges(Protocol):
    lines: list[str]


@dataclass
class _Unheard:
    lines: list[str] = field(default_factory=list)


_listener: list[ChangeListener] = []
_run: list[Callable[..., AbstractContextManager[RunChanges]]] = []


def register_change_listener(
    listener: ChangeListener, *, run: Callable[..., AbstractContextManager[RunChanges]] | None = None
) -> None:
    _listener[:] = [listener]
    _run[:] = [run] if run is not None else []


def objects_changed(object_type: str, ids: Collection[int]) -> None:
    if _listener and ids:
        _listener[0](object_type, ids)


@contextmanager
def import_run(*, push: bool = True) -> Iterator[RunChanges]:
    if not _run:
        yield _Unheard()
        return
    with _run[0](push=push) as run:
        yield run
