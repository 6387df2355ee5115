"""The ingestion inbox: /v1/* requests are validated, written as one row and answered; the ingest
worker then records them (identity resolution, profiles, events) many requests at a time.

Why: recording is set-based (audience/bulk.py), so its cost per event falls as the batch grows,
while a request that records its own events pays that cost for every /v1/track call. Segment's
own API works the same way: 200 means "accepted", stored durably, recorded shortly after.

The guarantees stay those of the synchronous path:
- a request is stored whole or not at all (one row), and recorded whole or not at all (the
  worker records a row and deletes it in one transaction);
- a repeated messageId is stored once (the recorder checks, as before);
- a row the worker cannot record is kept, marked failed with the reason, never dropped.

A row is JSON text: a list of normalised calls (`_document` below), their client time already
corrected for clock skew, so the worker does not validate again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from celery import current_app
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils.timezone import now

from audience.models import InboxBatch
from audience.segment_spec import Call
from audience.services import (
    atomic_with_retries,
    calls_record_in_transaction,
    occurred_at,
)
from core.db import raw_cursor
from core.sqlite import give_writers_a_turn
from tenants.models import Tenant

log = logging.getLogger(__name__)

# The worker records about CHUNK_CALLS calls per transaction: large enough that the
# set-based statements cost little per call, small enough to keep transactions short. Rows
# hold 1 (/v1/track) to ~2,500 (/v1/batch) calls, so the rows claimed per chunk adapt.
CHUNK_CALLS = 5_000
MAX_CHUNK_ROWS = 1_000
# On SQLite a chunk's transaction holds the only write lock, and every page that saves something
# waits for it: there chunks are also sized to take about this long.
SQLITE_CHUNK_SECONDS = 0.5
WAKE_INTERVAL = 0.25  # seconds: a web process asks for a drain at most this often
BROKER_PAUSE = 5.0  # seconds without trying after the broker refused a wake-up


@dataclass
class DrainResult:
    batches: int = 0
    calls: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    more: bool = False  # stopped at its time limit: rows may be waiting still


# --- accepting (web process) ---------------------------------------------------------------------


def inbox_accept(
    *,
    tenant: Tenant,
    calls: list[Call],
    source: str,
    received_at: datetime | None = None,
) -> None:
    """Keep validated calls for the ingest worker and wake it after commit."""
    received_at = received_at or now()
    document = orjson.dumps([_document(c, received_at) for c in calls]).decode()
    values = [tenant.pk, source, _received_at_db(received_at, connection), len(calls), document]
    if connection.in_atomic_block:
        _insert(values)
    else:
        # Called once per /v1/* request: rather than Django's health check (CONN_HEALTH_CHECKS,
        # a `SELECT 1` round trip before each request's first query, a quarter of a
        # /v1/track request), insert at once and, if the persistent connection had gone away
        # (a database restart), reconnect and insert again. Nothing was stored by the failed
        # attempt, and a duplicate would carry the same messageIds anyway.
        connection.health_check_done = True  # type: ignore[attr-defined]  # Django 5.1's; stubs lack it
        try:
            _insert(values)
        except (InterfaceError, OperationalError):
            connection.close()
            _insert(values)
    transaction.on_commit(inbox_wake)


def _insert(values: list[Any]) -> None:
    # One plain INSERT: Model.save() costs more Python than the statement costs PostgreSQL.
    # On PostgreSQL it is prepared once per connection (Django's cursors never prepare).
    if connection.vendor == "postgresql":
        with connection.wrap_database_errors, raw_cursor() as cursor:
            cursor.execute(_INSERT, values, prepare=True)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, values)


_INSERT = (
    "INSERT INTO audience_inboxbatch"
    " (tenant_id, source, received_at, size, messages, attempts, error)"
    " VALUES (%s, %s, %s, %s, %s, 0, '')"
)
_received_at_db = InboxBatch._meta.get_field("received_at").get_db_prep_value


def _document(call: Call, received_at: datetime) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": call.type,
        "messageId": call.message_id,
        "occurredAt": occurred_at(call, received_at),  # orjson writes ISO 8601
    }
    for key, value in (
        ("userId", call.user_id),
        ("anonymousId", call.anonymous_id),
        ("previousId", call.previous_id),
        ("groupId", call.group_id),
        ("event", call.event),
        ("properties", call.properties),
        ("traits", call.traits),
        ("context", call.context),
        ("profile", call.profile),
    ):
        if value:
            document[key] = value
    return document


def _call(document: dict[str, Any], received_at: datetime) -> Call:
    get = document.get
    return Call(
        type=document["type"],
        message_id=document["messageId"],
        user_id=get("userId"),
        anonymous_id=get("anonymousId"),
        previous_id=get("previousId"),
        group_id=get("groupId"),
        event=get("event"),
        properties=get("properties") or {},
        traits=get("traits") or {},
        context=get("context") or {},
        profile=get("profile") or {},
        timestamp=datetime.fromisoformat(document["occurredAt"]),  # already skew-corrected
        received_at=received_at,
    )


class _Waker:
    """Asks the ingest worker to drain, without a broker round trip per request.

    A request needs a drain that *starts after* its row committed. One published with an ETA in
    the future is such a drain for every request until then, so a process publishes at most one
    task per WAKE_INTERVAL: immediately when it has not published for that long, otherwise one
    due at the end of the interval. Thread-safe (gunicorn may run threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")  # monotonic time the last published drain is due

    def __call__(self) -> None:
        from audience.tasks import inbox_drain  # tasks import this module

        if current_app.conf.task_always_eager:  # tests and one-process setups: drain right here
            inbox_drain.delay()
            return
        with self._lock:
            moment = time.monotonic()
            if self._last > moment:  # a drain due later will see this request's row (or the
                return  # broker is down, see below)
            delay = max(0.0, self._last + WAKE_INTERVAL - moment)
            self._last = moment + delay
        try:
            # None: no countdown (celery-types says float; Celery takes None).
            inbox_drain.apply_async(countdown=delay or None, retry=False)  # type: ignore[arg-type]
        except Exception:
            # The row is stored; the periodic drain (config/celery.py) records it once the
            # broker is back. The request must not fail for that, and the next ones must not
            # each wait on a broker that is down: try again after a pause.
            with self._lock:
                self._last = time.monotonic() + BROKER_PAUSE
            log.warning("Could not queue an inbox drain; the periodic drain will.", exc_info=True)


inbox_wake = _Waker()


# --- recording (ingest worker) -------------------------------------------------------------------


def inbox_drain(*, seconds: float | None = None) -> DrainResult:
    """Record the waiting inbox rows, oldest first, ~CHUNK_CALLS per transaction. Any number
    of workers may drain at once: each claims rows with SKIP LOCKED. A chunk that fails is
    recorded again one row at a time, so one bad row is set aside (failed, with the error)
    without holding up the others. After `seconds` it stops between chunks with `more` set,
    so that a worker shared with other queues gets back to them."""
    result = DrainResult()
    deadline = None if seconds is None else time.monotonic() + seconds
    rows = 50  # a first guess: requests of 100 calls, as SDKs send them
    seconds_per_call = 0.0  # measured on SQLite only
    while True:
        started = time.monotonic()
        try:
            chunk = atomic_with_retries(partial(_record_claimed, rows))
        except Exception:
            log.exception("An inbox chunk failed; recording its rows one by one.")
            chunk = _record_one_by_one(rows)
        if connection.vendor == "sqlite" and chunk.calls:
            seconds_per_call = (time.monotonic() - started) / chunk.calls
        result.batches += chunk.batches
        result.calls += chunk.calls
        result.stored += chunk.stored
        result.duplicates += chunk.duplicates
        result.failed += chunk.failed
        if chunk.batches + chunk.failed < rows:
            # The claim took every waiting row no other worker holds. Rows accepted since have
            # a drain of their own coming (_Waker); chasing them here, a few at a time, would
            # pay a transaction's fixed cost for each few.
            return result
        if deadline is not None and time.monotonic() > deadline:
            result.more = True
            return result
        give_writers_a_turn()
        size = max(1, chunk.calls // max(1, chunk.batches))
        calls = CHUNK_CALLS
        if seconds_per_call:
            calls = min(calls, int(SQLITE_CHUNK_SECONDS / seconds_per_call))
        rows = max(1, min(MAX_CHUNK_ROWS, calls // size))


def _claim(limit: int) -> list[InboxBatch]:
    pending = InboxBatch.objects.filter(failed_at=None).order_by("id")
    return list(pending.select_for_update(skip_locked=True)[:limit])


def _record_claimed(limit: int, claimed: list[int] | None = None) -> DrainResult:
    """Claim up to `limit` rows, record them and delete them. Must run in a transaction."""
    rows = _claim(limit)
    if claimed is not None:
        claimed[:] = [row.pk for row in rows]
    return _record_rows(rows)


def _record_rows(rows: list[InboxBatch]) -> DrainResult:
    """Record rows this transaction holds locked, and delete them: whole or not at all."""
    chunk = DrainResult(batches=len(rows), calls=sum(row.size for row in rows))
    if not rows:
        return chunk
    groups: dict[tuple[int, str], list[Call]] = defaultdict(list)
    for row in rows:
        calls = [_call(document, row.received_at) for document in orjson.loads(row.messages)]
        groups[row.tenant_id, row.source].extend(calls)
    tenants = Tenant.objects.in_bulk({tenant_id for tenant_id, _ in groups})
    for (tenant_id, source), calls in groups.items():
        recorded = calls_record_in_transaction(tenants[tenant_id], calls, source, now())
        chunk.stored += recorded.stored
        chunk.duplicates += recorded.duplicates
    InboxBatch.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return chunk


def _record_one_by_one(limit: int) -> DrainResult:
    done = DrainResult()
    for _ in range(limit):
        claimed: list[int] = []
        try:
            one = atomic_with_retries(partial(_record_claimed, 1, claimed))
        except OperationalError:
            raise  # the database failing (down, a timeout): no row's fault, try again later
        except Exception as exc:
            if not claimed:
                raise
            _set_aside(claimed[0], exc)
            done.failed += 1
            continue
        if not one.batches:
            break
        done.batches += 1
        done.calls += one.calls
        done.stored += one.stored
        done.duplicates += one.duplicates
    return done


def _set_aside(batch_id: int, exc: Exception) -> None:
    log.error("Inbox batch %s could not be recorded: %r", batch_id, exc)
    InboxBatch.objects.filter(pk=batch_id).update(
        failed_at=now(), attempts=F("attempts") + 1, error=f"{type(exc).__name__}: {exc}"[:2000]
    )


def inbox_retry(*, batch_ids: list[int]) -> int:
    """Put failed rows back in the queue (the admin's "Retry" action) and wake the worker."""
    count = (
        InboxBatch.objects.filter(pk__in=batch_ids)
        .exclude(failed_at=None)
        .update(failed_at=None, error="")
    )
    if count:
        transaction.on_commit(inbox_wake)
    return count


# A visitor's page asks for a decision (a banner, recommendations) moments after its last calls:
# waiting longer than this for a worker's chunk that holds them is worse than deciding without.
SETTLE_LOCK_TIMEOUT_MS = 2_000


def inbox_settle(*, tenant: Tenant, user_id: str | None, anonymous_id: str | None) -> bool:
    """Record the inbox rows that hold calls of this visitor now, in the caller's request (see
    audience.services.visitor_settle), so that what is decided next reads their latest calls.
    True if anything was recorded here.

    The worker's guarantees hold: a row is recorded whole and deleted in the same transaction,
    exactly once. The rows are found without a lock (one statement: nothing pending is the common
    case, and costs a look at the partial index of pending rows), then locked in id order like the
    worker's claim, but waiting (no SKIP LOCKED) for a row a worker holds: once that worker
    commits, the row is gone and is not recorded twice. A row matches when its JSON holds one of
    the visitor's ids as a value (`userId`, `anonymousId`, `previousId`): a row of several
    visitors is recorded whole, which only records the others' calls a moment early.

    The visitor's lifecycle stage follows in the same transaction (the worker leaves it to a
    task), so that a decision by stage reads it too."""
    needles = [":" + orjson.dumps(value).decode() for value in (user_id, anonymous_id) if value]
    if not needles:
        return False
    holding = Q()
    for needle in needles:
        holding |= Q(messages__contains=needle)  # on SQLite LIKE ignores case: a harmless extra
    pending = InboxBatch.objects.filter(tenant=tenant, failed_at=None).filter(holding)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    if not ids:
        return False
    try:
        done = atomic_with_retries(partial(_settle, tenant, ids, user_id, anonymous_id))
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        log.warning(
            "Settling a visitor waited %s ms for a worker; deciding without.",
            SETTLE_LOCK_TIMEOUT_MS,
        )
        return False
    return done.batches > 0


def _settle(
    tenant: Tenant, ids: list[int], user_id: str | None, anonymous_id: str | None
) -> DrainResult:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = {SETTLE_LOCK_TIMEOUT_MS}")
    # SQLite ignores FOR UPDATE: there this transaction (BEGIN IMMEDIATE) already holds the only
    # write lock, so no worker is between its claim and its commit, and the rows read are current.
    rows = list(
        InboxBatch.objects.filter(pk__in=ids, failed_at=None).order_by("id").select_for_update()
    )
    done = _record_rows(rows)
    if done.batches:
        from audience.selectors import contact_for_visitor
        from audience.stages import stages_refresh  # stages records through audience.services

        contact = contact_for_visitor(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
        if contact is not None:
            stages_refresh(tenant=tenant, contact_ids=[contact.pk])
    return done
