"""Optional read replica for the feeds (`DATABASE_REPLICA_URL`).

settings.py installs `FeedReadReplicaRouter` and `FeedReplicaReadsMiddleware` when a replica is
configured. Reads go to the replica only inside `replica_reads()` (which the middleware enters
for GET/HEAD under /feed/, around the view and each chunk of a streamed body) and only for
catalogue models (`REPLICA_MODELS`). Everything else, personal data above all, reads the
primary: a lagging replica could hand a customer who just withdrew consent back to Clerk.
Writes always go to the primary; `migrate` never touches the replica.

See docs/operations.md ("Production deployment", read replica).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator

from django.http import HttpRequest, HttpResponse

from feeds.middleware import FEED_PREFIX

REPLICA = "replica"
PRIMARY = "default"

# Catalogue models, by label: safe to read slightly stale (docs/operations.md, read replica).
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
