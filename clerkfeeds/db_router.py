"""Optional read replica for the feeds (`DATABASE_REPLICA_URL`).

settings.py installs `FeedReadReplicaRouter` and `FeedReplicaReadsMiddleware` when a replica is
configured. Reads go to the replica only when both hold:

* the code asked for it: inside `replica_reads()`, which the middleware enters for every GET or
  HEAD under /feed/, around the view *and* each chunk of a streamed body (a streamed feed is
  read from the database after the view has returned); and
* the model is catalogue data (products, their categories, pages).

Everything else reads the primary: the admin and the importer must read their own writes (a
consent just recorded, the row an upsert compares against), and so must the import-run
bookkeeping of the feeds app.

Why personal data (customers, orders, consent records) never comes from the replica: a replica
lags. A customer who withdraws consent is deleted at Clerk by the outbox within seconds; a
customers page read from a replica a few seconds behind would hand them straight back to
Clerk. Stale catalogue data costs nothing of that kind: the next import corrects it. The
trade-off that remains: while the replica lags, a catalogue page can miss the newest changes,
and a walk whose pages come from replicas at different lag (several replicas behind one name)
can see a row move. Use one replica per walk's connection (one DATABASE_REPLICA_URL), and
monitor its lag.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator

from django.http import HttpRequest, HttpResponse

from feeds.middleware import FEED_PREFIX

REPLICA = "replica"
PRIMARY = "default"

# Catalogue models, by label: safe to read slightly stale (see the module docstring).
REPLICA_MODELS = frozenset({"shop.product", "shop.category", "shop.productcategory", "shop.page"})

_replica_reads: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_reads", default=False)


@contextlib.contextmanager
def replica_reads() -> Iterator[None]:
    """Within this block, reads of catalogue models go to the replica (when one is configured)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def replica_reads_active() -> bool:
    return _replica_reads.get()


class FeedReadReplicaRouter:
    """Catalogue reads to the replica inside `replica_reads()`; everything else to the primary."""

    def db_for_read(self, model, **hints) -> str:
        if replica_reads_active() and model._meta.label_lower in REPLICA_MODELS:
            return REPLICA
        return PRIMARY

    def db_for_write(self, model, **hints) -> str:
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        # The replica holds the primary's data: objects from either may be related.
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool | None:
        # The replica gets its schema by replication, never by `migrate`.
        if db == REPLICA:
            return False
        return None


def _chunks_in_context(context: contextvars.Context, chunks: Iterable) -> Iterator:
    """Yield `chunks`, producing each one inside `context` (where replica reads are on)."""
    iterator = iter(chunks)
    while True:
        try:
            chunk = context.run(next, iterator)
        except StopIteration:
            return
        yield chunk


class FeedReplicaReadsMiddleware:
    """Enter `replica_reads()` for feed GET/HEAD requests, streamed bodies included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(FEED_PREFIX) or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        with replica_reads():
            response = self.get_response(request)
        if getattr(response, "streaming", False):
            # The body is produced later, by the server's loop, outside this call: give it a
            # context of its own where replica reads are on.
            context = contextvars.copy_context()
            context.run(_replica_reads.set, True)
            response.streaming_content = _chunks_in_context(context, response.streaming_content)
        return response
