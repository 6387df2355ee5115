"""Sending what the outbox holds, exactly once (docs/architecture.md).

1. `claim()` moves due rows queued → sending in one statement (`FOR UPDATE SKIP LOCKED`), stamping
   a claim token: any number of workers share the queue, none takes a row another holds.
2. `policy.decide()` judges the batch: send, skip (recorded with its reason) or defer.
3. The channel prepares each message (Liquid, tracking links) and sends them in groups (one
   SMTP connection or push request per message of a group, all at once). Just before the
   group's point of no return (SMTP's final ".", the push POST) the sender calls `handover()`,
   which stamps `handed_over_at` on the group's rows — those that still carry this worker's
   claim token — in one statement, and commits it.
4. The batch's outcomes are written together, each only where the claim token still matches,
   with their events on the contacts, in one transaction.

A row carries a claim token only while it is `sending` (a constraint), so whatever moves it on
clears the token. A worker killed anywhere leaves rows in `sending`; `recover()` returns those
never handed over to the queue and counts those handed over as sent. So a crash, a retried
task or a second beat can neither send a message twice nor lose one.
"""

from __future__ import annotations

import logging
import select
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils.timezone import now

from messaging import outcomes, policy
from messaging.models import Delivery, Suppression
from messaging.services import suppression_add

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a temporary failure (SMTP 4xx, push 429/5xx) is retried this many times
BACKOFF_SECONDS = (30, 120, 600, 1800)  # after the 1st, 2nd, 3rd, 4th failed attempt


class SendFailure(Exception):
    """A message that did not go out. `retryable`: a temporary failure (try again later)."""

    def __init__(self, message: str, *, retryable: bool, outcome: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outcome = outcome  # e.g. outcomes.EMAIL_BOUNCED for a permanent rejection


class Reclaimed(Exception):
    """The row was taken back (its lease ran out and recovery requeued it): do not send."""


Handover = Callable[[list[Delivery]], list[Delivery]]
Outcome = str | BaseException  # the provider id of a sent message, or why it was not sent


class ChannelSender(Protocol):
    """One channel's way out. One instance per run: it may keep connections open."""

    group_size: int  # how many messages it sends at once (one handover commit for them all)

    def begin(self, deliveries: Sequence[Delivery]) -> None:
        """Load what the batch's messages need (e.g. push subscriptions), once per batch."""
        ...

    def prepare(self, delivery: Delivery, context: dict[str, Any]) -> Any:
        """Render and build the message, touching no database; raises
        rendering.TemplateError (or SendFailure) if it cannot."""
        ...

    def send_group(
        self, group: list[tuple[Delivery, Any]], handover: Handover, idle: Callable[[], bool]
    ) -> list[Outcome]:
        """Send up to `group_size` prepared messages; returns an outcome for each, in order.

        Calls `handover(deliveries)` once, right before the point of no return of those
        messages (SMTP's final ".", the push POST): it stamps and commits them and returns the
        ones still this worker's; a message not returned must not be sent (its outcome is
        Reclaimed). A failure is a SendFailure. While it waits on the network it may call
        `idle()`, which prepares one of the next messages (False: nothing left to prepare)."""
        ...

    def close(self) -> None: ...


SENDERS: dict[str, Callable[[], ChannelSender]] = {}


def register(channel: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        SENDERS[channel] = cls
        return cls

    return wrap


def lease_seconds() -> int:
    """How long a claimed row may stay in `sending` before recovery looks at it."""
    return int(getattr(settings, "MESSAGING_LEASE_SECONDS", 300))


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0
    recovered: int = 0
    more: bool = False
    reasons: dict[str, int] = field(default_factory=dict)


def claim(*, channel: str, limit: int, token: uuid.UUID, at: datetime) -> list[Delivery]:
    """Take up to `limit` due rows of `channel` for this worker (one statement per batch)."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.QUEUED, channel=channel, not_before__lte=at)
            .order_by("not_before")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            claimed_at=at,
            handed_over_at=None,
            attempts=F("attempts") + 1,
            updated_at=at,
        )
    return list(
        Delivery.objects.filter(pk__in=ids, claim_token=token)
        .select_related("contact", "tenant")
        .order_by("not_before", "pk")
    )


def recover(*, channel: str | None = None, at: datetime | None = None) -> int:
    """Settle rows whose worker died: handed over → sent; never handed over → queued again."""
    at = at or now()
    stale = Q(
        status=Delivery.Status.SENDING, claimed_at__lt=at - timedelta(seconds=lease_seconds())
    )
    if channel:
        stale &= Q(channel=channel)
    with transaction.atomic():
        rows = list(Delivery.objects.select_for_update(skip_locked=True).filter(stale))
        handed = [d for d in rows if d.handed_over_at is not None]
        # A message whose every attempt ended with its worker dead (it hangs or crashes the
        # sender) must not cycle for ever, taking its batch-mates through the lease each time.
        given_up = [d for d in rows if d.handed_over_at is None and d.attempts >= MAX_ATTEMPTS]
        requeue = [d.pk for d in rows if d.handed_over_at is None and d.attempts < MAX_ATTEMPTS]
        if requeue:
            Delivery.objects.filter(pk__in=requeue).update(
                status=Delivery.Status.QUEUED,
                claim_token=None,
                updated_at=at,
                reason="requeued: the worker that claimed it stopped before sending",
            )
        for d in handed:
            d.status, d.sent_at, d.updated_at = Delivery.Status.SENT, d.handed_over_at, at
            d.reason = "sent; the worker stopped before confirming it"
        for d in given_up:
            d.status, d.updated_at = Delivery.Status.FAILED, at
            d.reason = f"its worker stopped during each of {d.attempts} attempts"
        for d in handed + given_up:
            d.claim_token = None  # a stalled worker that comes back finds none of them its own
        if handed or given_up:
            Delivery.objects.bulk_update(
                handed + given_up, ["status", "sent_at", "updated_at", "reason", "claim_token"]
            )
            outcomes.record(
                [(d, outcomes.sent_name(d.channel), {}) for d in handed]
                + [(d, outcomes.failed_name(d.channel), {"reason": d.reason}) for d in given_up]
            )
    if rows:
        log.warning("recovered %d deliveries (%d requeued)", len(rows), len(requeue))
    return len(rows)


def _handover(token: uuid.UUID) -> Handover:
    def handover(deliveries: list[Delivery]) -> list[Delivery]:
        """Stamp `handed_over_at` on those of `deliveries` this worker still holds, durably
        (autocommit: the stamp must be on disk before the messages leave), in one statement for
        the group; returns them."""
        if not deliveries:
            return []
        stamp = now()
        sqlite = connection.vendor == "sqlite"
        ids = [d.pk for d in deliveries]
        with connection.cursor() as cursor:
            # Plain SQL with RETURNING: which rows are still ours is decided by the same
            # statement that stamps them. Our token means "still sending, and ours" (a
            # constraint); a `status = 'sending'` here would let the planner pick the partial
            # delivery_sending_idx, whose entries of long-sent rows it scans until a vacuum
            # removes them (163,000 per 8-row stamp in a 100k send).
            cursor.execute(
                "UPDATE messaging_delivery SET handed_over_at = %s"
                f" WHERE id IN ({', '.join(['%s'] * len(ids))}) AND claim_token = %s"
                " RETURNING id",
                [stamp, *ids, token.hex if sqlite else token],
            )
            mine = {row[0] for row in cursor.fetchall()}
        handed = [d for d in deliveries if d.pk in mine]
        for d in handed:
            d.handed_over_at = stamp
        return handed

    return handover


def deliveries_send(*, channel: str, batch_size: int = 200, seconds: float = 20.0) -> SendReport:
    """Send due deliveries of `channel` until none are due or `seconds` have passed."""
    from messaging.context import contexts_build  # rendering pulls in Liquid; loaded on use

    report = SendReport()
    report.recovered = recover(channel=channel)
    deadline = time.monotonic() + seconds
    sender = SENDERS[channel]()
    try:
        while True:
            token, at = uuid.uuid4(), now()
            batch = claim(channel=channel, limit=batch_size, token=token, at=at)
            report.claimed += len(batch)
            if batch:
                _send_batch(batch, sender, token, report, contexts_build)
            if len(batch) < batch_size:
                break
            if time.monotonic() > deadline:
                report.more = True
                break
    finally:
        sender.close()
    return report


def _send_batch(
    batch: list[Delivery],
    sender: ChannelSender,
    token: uuid.UUID,
    report: SendReport,
    contexts_build: Callable[[list[Delivery]], dict[int, dict[str, Any]]],
) -> None:
    at = now()
    verdicts = policy.decide(batch, at=at)
    done: list[tuple[Delivery, str, str, str]] = []  # (delivery, status, reason, error)
    deferred: list[tuple[Delivery, datetime, str]] = []
    to_send = []
    for d in batch:
        verdict = verdicts[d.pk]
        if verdict.action == "skip":
            done.append((d, Delivery.Status.SKIPPED, verdict.reason, ""))
        elif verdict.action == "defer":
            d.attempts -= 1  # waiting out quiet hours or a limit is not a failed attempt
            deferred.append((d, verdict.until or at, verdict.reason))
        else:
            to_send.append(d)
    contexts = contexts_build(to_send) if to_send else {}
    sender.begin(to_send)
    ahead = _Ahead(sender, to_send, contexts)
    handover = _handover(token)
    size = max(1, sender.group_size)
    for start in range(0, len(to_send), size):
        group = []
        for d in to_send[start : start + size]:
            try:
                group.append((d, ahead.take(d)))
            except Exception as exc:  # a template that fails on this contact's data, a bug
                if not isinstance(exc, SendFailure):
                    log.exception("delivery %s could not be built", d.pk)
                reason = f"could not build the message: {exc}"[:200]
                done.append((d, Delivery.Status.FAILED, reason, repr(exc)))
        if not group:
            continue
        try:
            results: list[Outcome] = sender.send_group(group, handover, ahead.step)
        except Exception as exc:  # a bug in the sender: settle each message by its stamp
            log.exception("sending deliveries %s failed", [d.pk for d, _ in group])
            results = [exc] * len(group)
        for (d, _), result in zip(group, results, strict=True):
            _settle(d, result, done, deferred)
    _finish(done, deferred, token, report)


def _settle(
    d: Delivery,
    result: Outcome,
    done: list[tuple[Delivery, str, str, str]],
    deferred: list[tuple[Delivery, datetime, str]],
) -> None:
    if isinstance(result, str):
        d.provider_id = result[:255]
        d.sent_at = d.handed_over_at or now()
        done.append((d, Delivery.Status.SENT, "", ""))
    elif isinstance(result, Reclaimed):
        pass  # another worker owns it now
    elif isinstance(result, SendFailure):
        # The sender says retryable only when the message surely did not go out (a 4xx reply,
        # no connection before the handover).
        if result.retryable and d.attempts < MAX_ATTEMPTS:
            d.handed_over_at = None
            wait = BACKOFF_SECONDS[min(d.attempts, len(BACKOFF_SECONDS)) - 1]
            deferred.append((d, now() + timedelta(seconds=wait), f"retrying: {result}"[:200]))
            d.last_error = str(result)
        else:
            done.append((d, Delivery.Status.FAILED, str(result)[:200], str(result)))
            d.failure_outcome = result.outcome  # type: ignore[attr-defined]
    elif d.handed_over_at is not None:
        log.error("delivery %s: %r after its handover", d.pk, result)
        # It may have left: counted as sent, as recovery would, never sent again.
        d.sent_at = d.handed_over_at
        done.append((d, Delivery.Status.SENT, f"outcome unconfirmed: {result}"[:200], ""))
    else:
        log.error("delivery %s could not be sent: %r", d.pk, result)
        reason = f"could not send the message: {result}"[:200]
        done.append((d, Delivery.Status.FAILED, reason, repr(result)))


def idle_until_answered(sockets: Sequence[Any], idle: Callable[[], bool]) -> None:
    """Call `idle()` (prepare a next message) until every socket has something to read (the
    answers are in) or nothing is left to prepare. A sender calls it between writing its
    requests and reading the answers."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLIN)
    while len(poller.poll(0)) < len(sockets) and idle():
        pass


class _Ahead:
    """A batch's prepared messages, built in order on demand. The sender calls `step()` while it
    waits for the mail server or the push service, so the CPU work of the next messages fills
    those waits: on this thread, explicitly (a helper thread would have to win the GIL back
    after every reply, up to 5 ms each time)."""

    def __init__(
        self, sender: ChannelSender, deliveries: list[Delivery], contexts: dict[int, Any]
    ) -> None:
        self.sender, self.contexts = sender, contexts
        self.pending = iter(deliveries)
        self.ready: dict[int, tuple[bool, Any]] = {}

    def step(self) -> bool:
        d = next(self.pending, None)
        if d is None:
            return False
        try:
            self.ready[d.pk] = (True, self.sender.prepare(d, self.contexts[d.pk]))
        except Exception as exc:
            self.ready[d.pk] = (False, exc)
        return True

    def take(self, d: Delivery) -> Any:
        """`d`'s prepared message (built now if it is not yet); raises what building raised."""
        while d.pk not in self.ready and self.step():
            pass
        ok, value = self.ready.pop(d.pk)
        if not ok:
            raise value
        return value


def _finish(
    done: list[tuple[Delivery, str, str, str]],
    deferred: list[tuple[Delivery, datetime, str]],
    token: uuid.UUID,
    report: SendReport,
) -> None:
    stamp = now()
    events: list[tuple[Delivery, str, dict[str, Any]]] = []
    with transaction.atomic():
        mine = set(
            Delivery.objects.select_for_update()
            .filter(
                pk__in=[d.pk for d, *_ in done] + [d.pk for d, *_ in deferred], claim_token=token
            )
            .values_list("pk", flat=True)
        )
        finished = []
        for d, status, reason, error in done:
            if d.pk not in mine:
                continue
            d.status, d.reason, d.updated_at, d.claim_token = status, reason, stamp, None
            if error:
                d.last_error = error
            finished.append(d)
            if status == Delivery.Status.SENT:
                report.sent += 1
                events.append((d, outcomes.sent_name(d.channel), {}))
            elif status == Delivery.Status.SKIPPED:
                report.skipped += 1
                report.reasons[reason] = report.reasons.get(reason, 0) + 1
                events.append((d, outcomes.SKIPPED, {"reason": reason}))
            else:
                report.failed += 1
                name = getattr(d, "failure_outcome", "") or outcomes.failed_name(d.channel)
                events.append((d, name, {"reason": reason}))
                if name == outcomes.EMAIL_BOUNCED:
                    # The server refused the address for good: never try it again.
                    suppression_add(
                        tenant=d.tenant,
                        address=d.contact.email,
                        reason=Suppression.Reason.BOUNCED,
                        detail=reason,
                    )
        _update_rows(
            finished,
            [
                "status",
                "reason",
                "last_error",
                "provider_id",
                "sent_at",
                "handed_over_at",
                "claim_token",
                "updated_at",
            ],
        )
        requeued = []
        for d, until, reason in deferred:
            if d.pk not in mine:
                continue
            d.status, d.not_before, d.reason, d.updated_at = (
                Delivery.Status.QUEUED,
                until,
                reason,
                stamp,
            )
            d.claim_token = None
            requeued.append(d)
            report.deferred += 1
        _update_rows(
            requeued,
            [
                "status",
                "not_before",
                "reason",
                "claim_token",
                "attempts",
                "handed_over_at",
                "last_error",
                "updated_at",
            ],
        )
        outcomes.record(events)


_COLUMN_TYPES = {
    "status": "text",
    "reason": "text",
    "last_error": "text",
    "provider_id": "text",
    "sent_at": "timestamptz",
    "handed_over_at": "timestamptz",
    "not_before": "timestamptz",
    "updated_at": "timestamptz",
    "claim_token": "uuid",
    "attempts": "integer",
}


def _update_rows(rows: list[Delivery], fields: list[str]) -> None:
    """Write `fields` of each row. On PostgreSQL one UPDATE joined to the values as one JSON
    document: Django's bulk_update builds a CASE per field and row, which cost more than the
    sending itself (3 ms per message)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_update(rows, fields, batch_size=500)
        return
    document = orjson.dumps(
        [{"id": d.pk, **{f: getattr(d, f) for f in fields}} for d in rows], default=str
    ).decode()
    assignments = ", ".join(f"{f} = v.{f}" for f in fields)
    columns = ", ".join(f"{f} {_COLUMN_TYPES[f]}" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE messaging_delivery AS d SET {assignments}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, {columns}) WHERE d.id = v.id",
            [document],
        )
