"""Delivering the outbox to Clerk: claim, send, acknowledge; retry with backoff.

    deliver_pending(*, clock=, client=, max_calls=) -> DeliveryReport   until no row is due
    claim_batch(*, now) -> Claim | None, acknowledge(claim, *, now, http_status=), backoff(attempts)

Rows are leased (`LEASE`); a deletion of a served object is dropped (`superseded`; erasures never
are); a push is rendered by the feeds when claimed, a deletion instead when no longer served.
Only Clerk's "ok" delivers, and only the `version` sent; unreachable backs off for ever; a
refused batch is split until the refused object stands alone, which fails (a push at once, a
deletion after `MAX_REFUSALS`). At least once. Reasons: docs/clerk.md, "Delivery", "Push".
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from clerk import hooks
from clerk.client import ClerkClient, ClerkRefused, ClerkUnreachable, get_client
from clerk.hooks import served_ids
from clerk.models import PERSONAL_TYPES, Action, ClerkDeletion, DeliveryAttempt, Outcome, Reason, Status
from clerk.push import push_mode, pushed_types

logger = logging.getLogger(__name__)

# Clerk documents no per-call limit; 100 ids keeps each DELETE's query string modest.
BATCH_SIZE = 100
# A push call's body stays under Clerk's documented request size (the objects' bytes).
MAX_PUSH_BYTES = 1_000_000
# Longer than a Clerk call can take (connect + read timeouts), so a live worker's rows are
# never re-claimed under it; a dead worker's rows come back after it.
LEASE = dt.timedelta(minutes=2)
# A call starts only while this much of its lease is left: more than a call can take (the
# client's deadline is connect + read timeout). A worker stalled past it does not send what it
# rendered (another may have sent a newer intent since); its rows come back when the lease ends.
CALL_MARGIN = dt.timedelta(seconds=30)
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=6)
# A refusal is Clerk saying no (bad keys, bad request): retrying forever would hide it.
MAX_REFUSALS = 5
# Clerk refusing our credentials: no id of the call is at fault, so splitting would only
# multiply the calls Clerk refuses.
CREDENTIALS_REFUSED = frozenset({401, 403})

Clock = Callable[[], dt.datetime]


@dataclass
class DeliveryReport:
    calls: int = 0
    delivered: int = 0
    superseded: int = 0
    retrying: int = 0
    failed: int = 0
    deleted_instead: int = 0  # pushes of objects that left the feeds, now deletions

    def __str__(self) -> str:
        return (
            f"{self.calls} call(s) to Clerk: {self.delivered} delivered, {self.retrying} to retry, "
            f"{self.failed} failed, {self.superseded} superseded"
            + (f", {self.deleted_instead} push(es) became deletions" if self.deleted_instead else "")
        )


@dataclass
class Claim:
    """Rows leased for one Clerk call."""

    batch: uuid.UUID
    action: str
    object_type: str
    rows: list[ClerkDeletion] = field(default_factory=list)
    superseded: int = 0
    deleted_instead: int = 0
    payloads: dict[int, bytes] = field(default_factory=dict)  # a push's objects, by id
    leased_until: dt.datetime | None = None

    @property
    def ids(self) -> list[int]:
        return sorted({r.object_id for r in self.rows})


def backoff(attempts: int, *, retry_after: float | None = None) -> dt.timedelta:
    """Wait before the next try: 30 s, 1 min, 2 min, … capped at 6 h; at least `Retry-After`."""
    delay = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    if retry_after:
        delay = max(delay, dt.timedelta(seconds=retry_after))
    return delay


def deliver_pending(
    *, clock: Clock = timezone.now, client: ClerkClient | None = None, max_calls: int | None = None
) -> DeliveryReport:
    """Send every due outbox row to Clerk (see the module docstring); returns what happened.

    `max_calls` is checked between claims: a claim being split finishes first.
    """
    client = client or get_client()
    report = DeliveryReport()
    while max_calls is None or report.calls < max_calls:
        claim = claim_batch(now=clock())
        if claim is None:
            break
        report.superseded += claim.superseded
        report.deleted_instead += claim.deleted_instead
        if claim.rows:
            _deliver(client, claim, clock=clock, report=report)
    return report


def _deliver(client: ClerkClient, claim: Claim, *, clock: Clock, report: DeliveryReport) -> None:
    """Send the claim, splitting a refused part in halves, depth first (at most 2N - 1 calls
    for N ids, each part's lease renewed before its call)."""
    parts = [claim]
    while parts:
        part = parts.pop()
        if part is not claim:
            _renew_lease([part, *parts], now=clock())
        if part.leased_until is not None and clock() + CALL_MARGIN > part.leased_until:
            # Stalled past its lease: not sent, and not settled (another worker may own them).
            report.retrying += sum(len(p.rows) for p in (part, *parts))
            _log(part, "lease ran out before the call, not sent")
            return
        report.calls += 1
        try:
            http_status = _send(client, part)
        except ClerkUnreachable as exc:
            # Clerk is down: this part and those not yet sent wait, and no refusal counts.
            unsettled = replace(part, rows=[r for p in (part, *parts) for r in p.rows])
            wait = _retry(unsettled, now=clock(), outcome=Outcome.UNREACHABLE, exc=exc, retry_after=exc.retry_after)
            report.retrying += len(unsettled.rows)
            _log(part, "unreachable", wait=wait)
            return
        except ClerkRefused as exc:
            if len(part.ids) > 1 and exc.status not in CREDENTIALS_REFUSED:
                _finish_attempts(part, now=clock(), outcome=Outcome.REFUSED, exc=exc)
                parts.extend(reversed(_halves(part)))
                _log(part, "refused, split")
                continue
            if part.action == Action.PUSH and exc.status not in CREDENTIALS_REFUSED:
                failed = _fail_push(part, now=clock(), exc=exc)
            else:
                failed = _refuse(part, now=clock(), exc=exc)
            report.failed += failed
            report.retrying += len(part.rows) - failed
            _log(part, "refused")
        else:
            acknowledge(part, now=clock(), http_status=http_status)
            report.delivered += len(part.rows)
            _log(part, "ok")


# --- the three steps ---------------------------------------------------------------------------
def claim_batch(*, now: dt.datetime) -> Claim | None:
    """Lease the next batch of due rows (step 1). None when nothing is due."""
    with transaction.atomic():
        due = ClerkDeletion.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).order_by(
            "next_attempt_at", "id"
        )
        head = _locked(due).first()
        if head is None:
            return None
        if head.action == Action.FORGET:
            rows = [head]
        else:
            same_type = due.filter(action=head.action, object_type=head.object_type)
            rows = list(_locked(same_type)[:BATCH_SIZE])
        claim = Claim(batch=uuid.uuid4(), action=head.action, object_type=head.object_type)
        if head.action == Action.PUSH:
            live = _render_pushes(rows, claim, now=now)
        else:
            live = _supersede(rows, now=now, batch=claim.batch)
            claim.superseded = len(rows) - len(live)
        claim.rows = live
        if live:
            pks = [r.pk for r in live]
            ClerkDeletion.objects.filter(pk__in=pks).update(next_attempt_at=now + LEASE, attempts=F("attempts") + 1)
            claim.leased_until = now + LEASE
            _log_attempts(claim, pks, now=now)
            for r in live:
                r.attempts += 1
    return claim


def _send(client: ClerkClient, claim: Claim) -> int | None:
    """One Clerk call for the claim (step 2): the HTTP status of Clerk's "ok"; raises the
    client's errors."""
    if claim.action == Action.FORGET:
        row = claim.rows[0]
        if row.email:
            client.forget(email=row.email)
        else:
            client.forget(customer=row.object_id)
    elif claim.action == Action.PUSH:
        client.upsert_encoded(claim.object_type, [claim.payloads[i] for i in claim.ids])
    else:
        client.delete(claim.object_type, claim.ids)
    return client.last_status


def acknowledge(claim: Claim, *, now: dt.datetime, http_status: int | None = None) -> None:
    """Mark the claim's rows delivered after Clerk's "ok" (step 3): those still at the version
    sent. A row whose intent moved meanwhile (a newer push, a deletion) stays pending, due now."""
    pks = [r.pk for r in claim.rows]
    with transaction.atomic():
        for version, same in _by_version(claim.rows).items():
            ClerkDeletion.objects.filter(pk__in=same, version=version).update(
                status=Status.DELIVERED,
                delivered_at=now,
                email="",
                last_error="",
            )
        ClerkDeletion.objects.filter(pk__in=pks, status=Status.PENDING).update(next_attempt_at=now)
        if claim.action == Action.PUSH:
            # A push that failed earlier is settled by this later one of the same object.
            ClerkDeletion.objects.filter(
                action=Action.PUSH, status=Status.FAILED, object_type=claim.object_type, object_id__in=claim.ids
            ).update(status=Status.SUPERSEDED)
        _finish_attempts(claim, now=now, outcome=Outcome.OK, http_status=http_status)


def _retry(claim: Claim, *, now, outcome, exc, retry_after=None, refused=False) -> dt.timedelta:
    """Put the rows back with a backoff that grows with each row's attempts."""
    longest = dt.timedelta(0)
    by_attempts: dict[int, list[int]] = defaultdict(list)
    for r in claim.rows:
        by_attempts[r.attempts].append(r.pk)
    with transaction.atomic():
        for attempts, pks in by_attempts.items():
            wait = backoff(attempts, retry_after=retry_after)
            longest = max(longest, wait)
            changes = {"next_attempt_at": now + wait, "last_error": str(exc)[:1000]}
            ClerkDeletion.objects.filter(pk__in=pks, status=Status.PENDING).update(**changes)
        if refused:  # a refusal counts against the intent that was sent, not a newer one
            for version, same in _by_version(claim.rows).items():
                ClerkDeletion.objects.filter(pk__in=same, version=version, status=Status.PENDING).update(
                    refusals=F("refusals") + 1
                )
        _finish_attempts(claim, now=now, outcome=outcome, exc=exc)
    return longest


def _refuse(claim: Claim, *, now, exc: ClerkRefused) -> int:
    """Back off after a refusal; rows refused `MAX_REFUSALS` times fail. Returns how many failed."""
    _retry(claim, now=now, outcome=Outcome.REFUSED, exc=exc, refused=True)
    pks = [r.pk for r in claim.rows]
    return ClerkDeletion.objects.filter(pk__in=pks, status=Status.PENDING, refusals__gte=MAX_REFUSALS).update(
        status=Status.FAILED
    )


def _fail_push(claim: Claim, *, now, exc: ClerkRefused) -> int:
    """Clerk refused this one object: it fails at once, with Clerk's reason (a change of the
    object queues a new push). A newer intent that came meanwhile stays pending, due now."""
    failed = 0
    with transaction.atomic():
        for version, same in _by_version(claim.rows).items():
            failed += ClerkDeletion.objects.filter(pk__in=same, version=version, status=Status.PENDING).update(
                status=Status.FAILED, last_error=str(exc)[:1000], refusals=F("refusals") + 1
            )
        ClerkDeletion.objects.filter(pk__in=[r.pk for r in claim.rows], status=Status.PENDING).update(
            next_attempt_at=now
        )
        _finish_attempts(claim, now=now, outcome=Outcome.REFUSED, exc=exc)
    return failed


def _by_version(rows: list[ClerkDeletion]) -> dict[int, list[int]]:
    by_version: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_version[r.version].append(r.pk)
    return by_version


def _finish_attempts(claim: Claim, *, now, outcome, exc=None, http_status: int | None = None) -> None:
    if claim.action == Action.PUSH:  # pushes log no attempts (`_log_attempts`)
        return
    DeliveryAttempt.objects.filter(batch=claim.batch, outcome=Outcome.IN_FLIGHT).update(
        outcome=outcome,
        finished_at=now,
        http_status=getattr(exc, "status", http_status),
        error=str(exc)[:1000] if exc else "",
    )


def _halves(part: Claim) -> list[Claim]:
    """The part's rows in two parts by id (a DELETE names each id once), each its own batch."""
    ids = part.ids
    first = set(ids[: len(ids) // 2])
    halves = [[r for r in part.rows if r.object_id in first], [r for r in part.rows if r.object_id not in first]]
    return [
        Claim(batch=uuid.uuid4(), action=part.action, object_type=part.object_type, rows=rows, payloads=part.payloads)
        for rows in halves
    ]


def _renew_lease(parts: list[Claim], *, now: dt.datetime) -> None:
    """Before another call of a split claim: every row still unsettled keeps its lease for one
    more call, and the part about to be sent gets its `in_flight` attempts."""
    part = parts[0]
    for p in parts:
        p.leased_until = now + LEASE
    with transaction.atomic():
        ClerkDeletion.objects.filter(pk__in=[r.pk for p in parts for r in p.rows], status=Status.PENDING).update(
            next_attempt_at=now + LEASE
        )
        _log_attempts(part, [r.pk for r in part.rows], now=now)


def _log_attempts(claim: Claim, pks: list[int], *, now: dt.datetime) -> None:
    """An `in_flight` attempt per row of a deletion or forget. Pushes log none: they are many,
    their row keeps its attempts, last error and delivery time, and a lost push costs freshness."""
    if claim.action == Action.PUSH:
        return
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(deletion_id=pk, batch=claim.batch, started_at=now, outcome=Outcome.IN_FLIGHT) for pk in pks
    )


# --- helpers -----------------------------------------------------------------------------------
def _locked(qs):
    """Row locks that concurrent workers skip, where the database has them (not SQLite, which
    serialises writers anyway)."""
    if connection.features.has_select_for_update_skip_locked:
        return qs.select_for_update(skip_locked=True)
    return qs


def _supersede(rows: list[ClerkDeletion], *, now, batch) -> list[ClerkDeletion]:
    """Drop deletions whose object is back: re-granted consent, a re-imported product.

    Deleting it now would remove from Clerk something the feeds show again. Erasure deletions
    are never dropped (an erased person is never eligible again anyway).
    """
    candidates = [r for r in rows if r.action == Action.DELETE and r.reason != Reason.ERASURE]
    if not candidates:
        return rows
    object_type = candidates[0].object_type
    ids = {r.object_id for r in candidates}
    back_ids = served_ids(object_type, ids, now=now)
    dropped = [r for r in candidates if r.object_id in back_ids]
    if dropped:
        pks = [r.pk for r in dropped]
        ClerkDeletion.objects.filter(pk__in=pks).update(status=Status.SUPERSEDED)
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(deletion_id=pk, batch=batch, started_at=now, finished_at=now, outcome=Outcome.SUPERSEDED)
            for pk in pks
        )
    return [r for r in rows if r not in dropped]


def _render_pushes(rows: list[ClerkDeletion], claim: Claim, *, now) -> list[ClerkDeletion]:
    """The pushes of `rows` to send now, rendered into `claim.payloads` (within `MAX_PUSH_BYTES`;
    the rest stay due). A row whose object the feeds do not serve now becomes a deletion; a
    type `CLERK_PUSH` no longer pushes is dropped (`superseded`), after holding what the feeds
    serve of a personal type, since Clerk may still have it."""
    object_type = claim.object_type
    ids = [r.object_id for r in rows]
    payloads = hooks.rendered(object_type, ids, now=now)
    gone = [r for r in rows if r.object_id not in payloads]
    if gone:
        reason = Reason.LEFT_FEED if object_type in PERSONAL_TYPES else Reason.DELETED
        ClerkDeletion.objects.filter(pk__in=[r.pk for r in gone]).update(
            action=Action.DELETE,
            reason=reason,
            version=F("version") + 1,
            created_at=now,
            next_attempt_at=now,
            refusals=0,
            last_error="",
        )
        hooks.deletions_queued(object_type, [r.object_id for r in gone])
        claim.deleted_instead = len(gone)
    kept = [r for r in rows if r.object_id in payloads]
    if object_type not in pushed_types():
        note = f"not sent: CLERK_PUSH={push_mode()} does not push {object_type}"
        _drop(kept, now=now, batch=claim.batch, note=note)
        claim.superseded = len(kept)
        return []
    live: list[ClerkDeletion] = []
    size = 0
    for r in kept:
        body = payloads[r.object_id]
        if live and size + len(body) + 1 > MAX_PUSH_BYTES:
            break
        live.append(r)
        size += len(body) + 1
    claim.payloads = {r.object_id: payloads[r.object_id] for r in live}
    return live


def _drop(rows: list[ClerkDeletion], *, now, batch, note: str) -> None:
    if not rows:
        return
    pks = [r.pk for r in rows]
    ClerkDeletion.objects.filter(pk__in=pks).update(status=Status.SUPERSEDED, last_error=note)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            deletion_id=pk, batch=batch, started_at=now, finished_at=now, outcome=Outcome.SUPERSEDED, error=note
        )
        for pk in pks
    )


def _log(claim: Claim, outcome: str, *, wait: dt.timedelta | None = None) -> None:
    logger.info(
        "clerk_outbox_call",
        extra={
            "action": claim.action,
            "object_type": claim.object_type or None,
            "rows": len(claim.rows),
            "outcome": outcome,
            "retry_in_seconds": wait.total_seconds() if wait else None,
            "batch": str(claim.batch),
        },
    )
