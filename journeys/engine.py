"""The journey engine: starts enrollments, runs their steps, wakes them on events (DESIGN §6).

Waits live in the database (`Enrollment.due_at`, `wait_event`), never in task countdowns. Beat
is only a clock: `advance_due` claims due enrollments in batches with `SELECT … FOR UPDATE
SKIP LOCKED` (any number of workers share the work; SQLite serialises writers anyway) and runs
each one through its graph — following ports through nodes that do not wait — in the batch's
one transaction. Messages are decided in that transaction (the outbox, messaging.services), so
a crash rolls back the step and its message together, and the idempotency key (enrollment,
node, arrival) makes a step that runs again decide nothing new.

A batch costs a constant number of statements whatever its size: the claim (enrollments with
their contacts), the versions, nodes and edges of the versions met, templates once each, one
insert of deliveries per template, one insert of steps, one update of the enrollments. Nodes
that read per contact (a condition, an event branch, a profile update, a webhook) add their own.

Entry points here:
    advance_due(limit=, now=)                                        -> enrollments advanced
    advance_enrollments(ids=, now=)                                  -> enrollments advanced
    enrollments_retry(tenant=, enrollments=, now=)                   -> enrollments retried
Entering is journeys/entry.py (enrollment_start); what events, segment changes and merges do
to enrollments is journeys/reactions.py; yearly dates are journeys/dates.py.
"""

from __future__ import annotations

import logging
import os
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from audience.models import Contact
from journeys import node_kinds
from journeys.models import Enrollment, Journey, JourneyVersion, Node, Step
from journeys.node_kinds import Fail, Finish, Follow, StepContext, Wait

if TYPE_CHECKING:
    from messaging.models import Template
    from messaging.services import Decision
    from tenants.models import Tenant

log = logging.getLogger(__name__)

OPEN = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)
MAX_HOPS = 50  # nodes one enrollment may pass in one run (graph rules forbid cycles without waits)
BATCH = 500
ENROLLMENT_FIELDS = [
    "node_key",
    "arrived_at",
    "state",
    "due_at",
    "wait_event",
    "wait_match",
    "context",
    "steps_taken",
    "attempts",
    "failure",
    "converted_at",
    "revenue",
    "finished_at",
    "updated_at",
]
FINAL_RESULTS: dict[str, str] = {
    Enrollment.State.COMPLETED: Step.Result.COMPLETED,
    Enrollment.State.CONVERTED: Step.Result.CONVERTED,
    Enrollment.State.EXITED: Step.Result.EXITED,
}


# --- one batch's shared state: graphs, templates, decided messages --------------------------


@dataclass
class Graph:
    """One version's nodes and edges, loaded once per batch."""

    version: JourneyVersion
    nodes: dict[str, Node]
    edges: dict[tuple[str, str], str]

    @property
    def trigger(self) -> Node | None:
        return next((n for n in self.nodes.values() if n.kind.startswith("trigger_")), None)


def graphs_load(version_ids: Iterable[int]) -> dict[int, Graph]:
    """Versions (with journey and tenant), their nodes and edges: three queries."""
    ids = set(version_ids)
    if not ids:
        return {}
    graphs = {
        v.pk: Graph(v, {}, {})
        for v in JourneyVersion.objects.filter(pk__in=ids).select_related("journey", "tenant")
    }
    for node in Node.objects.filter(version_id__in=ids):
        graphs[node.version_id].nodes[node.key] = node
    for source, port, target, version_id in _edges(ids):
        graphs[version_id].edges[(source, port)] = target
    return graphs


def _edges(ids: set[int]) -> Iterable[tuple[str, str, str, int]]:
    from journeys.models import Edge

    return Edge.objects.filter(version_id__in=ids).values_list(
        "source", "port", "target", "version_id"
    )


@dataclass
class _Batch:
    templates: dict[tuple[int, str, str], Template | None] = field(default_factory=dict)
    decisions: dict[tuple[int, int, str, str], list[Decision]] = field(
        default_factory=lambda: defaultdict(list)
    )
    objects: dict[tuple[int, int], tuple[Tenant, Template]] = field(default_factory=dict)

    def flush(self) -> None:
        """Decide the batch's messages: one insert per (template, source, category)."""
        from messaging.services import deliveries_create

        for (tenant_id, template_id, source, category), decisions in self.decisions.items():
            tenant, template = self.objects[(tenant_id, template_id)]
            deliveries_create(
                tenant=tenant,
                template=template,
                source=source,
                category=category,
                decisions=decisions,
            )
        self.decisions.clear()


_batch: ContextVar[_Batch | None] = ContextVar("journeys_engine_batch", default=None)


def template_get(*, tenant: Tenant, public_id: str, channel: str) -> Template | None:
    """The tenant's template of `channel` (an action's setting), once per batch."""
    from journeys.kinds.actions import template_of

    batch = _batch.get()
    key = (tenant.pk, public_id, channel)
    if batch is not None and key in batch.templates:
        return batch.templates[key]
    template = template_of(tenant_id=tenant.pk, public_id=public_id, channel=channel)
    if batch is not None:
        batch.templates[key] = template
    return template


def message_decide(
    *, tenant: Tenant, template: Template, source: str, category: str, decision: Decision
) -> None:
    """Decide a message in the current step's transaction: gathered and written with the
    batch's others (deliveries_create), or at once outside a batch."""
    batch = _batch.get()
    if batch is None:
        from messaging.services import delivery_create

        delivery_create(
            tenant=tenant,
            contact=decision.contact,
            template=template,
            source=source,
            idempotency_key=decision.idempotency_key,
            category=category,
            data=decision.data,
            event=decision.event,
        )
        return
    batch.objects[(tenant.pk, template.pk)] = (tenant, template)
    batch.decisions[(tenant.pk, template.pk, source, category)].append(decision)


# --- running steps ---------------------------------------------------------------------------


def step_log(
    enrollment: Enrollment, result: str, now: datetime, port: str = "", **detail: Any
) -> Step:
    return Step(
        tenant_id=enrollment.tenant_id,
        enrollment=enrollment,
        version_id=enrollment.version_id,
        node_key=enrollment.node_key,
        result=result,
        port=port,
        detail=detail,
        created_at=now,
    )


def finish(enrollment: Enrollment, state: str, now: datetime) -> None:
    enrollment.state = state
    enrollment.finished_at = now
    enrollment.due_at = None
    enrollment.wait_event = ""
    enrollment.wait_match = {}
    enrollment.context.pop("woken_by", None)


def _test_pause() -> None:
    """WAYFARER_ENGINE_TEST_PAUSE=<seconds>: sleep between enrollments (the kill -9 test)."""
    pause = os.environ.get("WAYFARER_ENGINE_TEST_PAUSE")
    if pause:
        clock.sleep(float(pause))


def run(enrollment: Enrollment, graph: Graph, now: datetime, steps: list[Step]) -> None:
    """Run one enrollment from its node until it waits, finishes or fails (in memory: the
    caller saves `enrollment` and `steps`)."""
    tenant = graph.version.tenant
    for _hop in range(MAX_HOPS):
        node = graph.nodes.get(enrollment.node_key)
        if node is None:
            _fail(enrollment, Fail("Its step no longer exists in this version."), now, steps)
            return
        woken = enrollment.context.get("woken_by") if isinstance(enrollment.context, dict) else None
        context = StepContext(
            tenant=tenant,
            enrollment=enrollment,
            contact=enrollment.contact,
            node=node,
            now=now,
            woken_by=woken if isinstance(woken, dict) else None,
        )
        try:
            outcome = node_kinds.get(node.kind).execute(context)
        except (node_kinds.NodeSettingsError, KeyError, TypeError, ValueError) as exc:
            # A node whose settings cannot run (an edit that skipped validation): fail it, with
            # the reason, rather than the whole batch. Database errors roll the batch back.
            outcome = Fail(f"The step could not run: {exc}")
        enrollment.context.pop("woken_by", None)
        if isinstance(outcome, Wait):
            _wait(enrollment, outcome, now, steps)
            return
        if isinstance(outcome, Finish):
            steps.append(step_log(enrollment, FINAL_RESULTS[outcome.state], now, **outcome.detail))
            finish(enrollment, outcome.state, now)
            return
        if isinstance(outcome, Fail):
            _fail(enrollment, outcome, now, steps)
            return
        assert isinstance(outcome, Follow)
        result = Step.Result.FOLLOWED
        if "sent" in outcome.detail:
            result = Step.Result.SENT
        elif node.kind == "goal" and outcome.port == "converted":
            result = Step.Result.CONVERTED
        steps.append(step_log(enrollment, result, now, outcome.port, **outcome.detail))
        target = graph.edges.get((node.key, outcome.port))
        if target is None:  # the path ends here
            steps.append(step_log(enrollment, Step.Result.COMPLETED, now))
            finish(enrollment, Enrollment.State.COMPLETED, now)
            return
        enrollment.node_key = target
        enrollment.arrived_at = now
        enrollment.steps_taken += 1
        enrollment.attempts = 0
        enrollment.failure = ""
        enrollment.state = Enrollment.State.ACTIVE
        enrollment.due_at = now
        enrollment.wait_event = ""
        enrollment.wait_match = {}
    _fail(enrollment, Fail(f"It passed {MAX_HOPS} steps without waiting."), now, steps)


def _wait(enrollment: Enrollment, wait: Wait, now: datetime, steps: list[Step]) -> None:
    state = Enrollment.State.WAITING if wait.event else Enrollment.State.ACTIVE
    changed = (
        enrollment.due_at != wait.until
        or enrollment.state != state
        or enrollment.wait_event != wait.event
        or enrollment.arrived_at == now
    )
    enrollment.state = state
    enrollment.due_at = wait.until
    enrollment.wait_event = wait.event
    enrollment.wait_match = dict(wait.match)
    if changed:
        steps.append(step_log(enrollment, Step.Result.WAITING, now, **wait.detail))


def _fail(enrollment: Enrollment, fail: Fail, now: datetime, steps: list[Step]) -> None:
    if fail.retry_at is not None:
        enrollment.attempts += 1
        enrollment.state = Enrollment.State.ACTIVE
        enrollment.due_at = fail.retry_at
        enrollment.failure = fail.reason
        steps.append(
            step_log(
                enrollment,
                Step.Result.FAILED,
                now,
                reason=fail.reason,
                retry_at=fail.retry_at.isoformat(),
                attempt=enrollment.attempts,
            )
        )
        return
    steps.append(step_log(enrollment, Step.Result.FAILED, now, reason=fail.reason))
    enrollment.state = Enrollment.State.FAILED
    enrollment.failure = fail.reason
    enrollment.due_at = None
    enrollment.finished_at = now


def _claim(*, limit: int, now: datetime, ids: Sequence[int] | None = None) -> list[Enrollment]:
    """Lock up to `limit` due enrollments of live journeys, earliest first, skipping rows another
    worker holds. Ids first, then the rows, and the live journeys as a list of ids: the claim
    must read only what it takes. The plan is Limit → LockRows → an index scan of
    `journey_enrollment_due`. Locking the rows of a join (with their contacts), or a join with
    the journeys, let the planner sort every due row under LockRows instead: each claim read
    all of them (bench/engine.py: two workers' PostgreSQL backends spent 3-6 times the CPU per
    step of one, 11.8 ms against 1.2 ms for a claim of 500 among 20,000 due)."""
    live = list(Journey.objects.filter(status=Journey.Status.LIVE).values_list("pk", flat=True))
    if not live:
        return []
    rows = Enrollment.objects.filter(state__in=OPEN, due_at__lte=now, journey_id__in=live)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    # Rows another worker holds are skipped, not waited for; PostgreSQL re-checks the filter
    # on a row that was changed meanwhile, so a row advanced by another worker is not taken.
    # (SQLite has no row locks: its writers take turns on the whole database.)
    claimed = list(
        rows.order_by("due_at")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:limit]
    )
    if not claimed:
        return []
    enrollments = list(Enrollment.objects.filter(pk__in=claimed).order_by("due_at", "pk"))
    # Their contacts by primary key, not joined: joined, the planner hashes the whole contact
    # table per batch (a sequential scan, growing with the audience, not with the batch).
    contacts = Contact.objects.in_bulk([e.contact_id for e in enrollments])
    for enrollment in enrollments:
        enrollment.contact = contacts[enrollment.contact_id]
    return enrollments


def _advance(enrollments: list[Enrollment], now: datetime) -> int:
    """Run claimed enrollments and save them, their steps and their messages (caller's
    transaction)."""
    graphs = graphs_load(e.version_id for e in enrollments)
    steps: list[Step] = []
    batch = _Batch()
    token = _batch.set(batch)
    try:
        for enrollment in enrollments:
            graph = graphs[enrollment.version_id]
            enrollment.version = graph.version
            enrollment.journey = graph.version.journey
            if not isinstance(enrollment.context, dict):
                enrollment.context = {}
            run(enrollment, graph, now, steps)
            enrollment.updated_at = now
            _test_pause()
        batch.flush()
    finally:
        _batch.reset(token)
    Step.objects.bulk_create(steps, batch_size=2000)
    enrollments_save(enrollments)
    return len(enrollments)


# PostgreSQL types of ENROLLMENT_FIELDS, for enrollments_save's arrays.
_FIELD_TYPES = {
    "node_key": "text",
    "arrived_at": "timestamptz",
    "state": "text",
    "due_at": "timestamptz",
    "wait_event": "text",
    "wait_match": "jsonb",
    "context": "jsonb",
    "steps_taken": "integer",
    "attempts": "integer",
    "failure": "text",
    "converted_at": "timestamptz",
    "revenue": "numeric",
    "finished_at": "timestamptz",
    "updated_at": "timestamptz",
}


def enrollments_save(enrollments: Sequence[Enrollment]) -> None:
    """Write back ENROLLMENT_FIELDS of many enrollments at once. On PostgreSQL, one
    `UPDATE … FROM unnest(arrays)`: Django's bulk_update builds a CASE per field and row, which
    took 75% of a batch's time (bench/engine.py --profile: 25 s of 33 s for 5,000 enrollments)."""
    if not enrollments:
        return
    if connection.vendor != "postgresql":
        Enrollment.objects.bulk_update(enrollments, ENROLLMENT_FIELDS, batch_size=1000)
        return
    columns = ["id", *ENROLLMENT_FIELDS]
    types = {"id": "bigint", **_FIELD_TYPES}
    arrays: list[list[Any]] = [[e.pk for e in enrollments]]
    for name in ENROLLMENT_FIELDS:
        values = [getattr(e, name) for e in enrollments]
        if types[name] == "jsonb":
            values = [orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode() for v in values]
        arrays.append(values)
    unnest = ", ".join(f"%s::{'text' if types[c] == 'jsonb' else types[c]}[]" for c in columns)
    assignments = ", ".join(
        f"{c} = v.{c}::jsonb" if types[c] == "jsonb" else f"{c} = v.{c}" for c in ENROLLMENT_FIELDS
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Enrollment._meta.db_table} AS e SET {assignments}"
            f" FROM unnest({unnest}) AS v({', '.join(columns)}) WHERE e.id = v.id",
            arrays,
        )


def advance_due(*, limit: int = BATCH, now: datetime | None = None) -> int:
    """Advance one batch of due enrollments of live journeys; returns how many. Safe to run
    in any number of workers at once."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return _advance(_claim(limit=limit, now=now), now)
    except Exception:
        # One enrollment broke the batch (a database error inside a step): run them one by
        # one so the others go on and that one fails with the reason.
        log.exception("journey batch failed; advancing one by one")
        return _advance_singly(limit=limit, now=now, ids=None)


def advance_enrollments(*, ids: Sequence[int], now: datetime | None = None) -> int:
    """Advance these enrollments now if they are due (woken, just started); skips those
    another worker holds (it advances them)."""
    if not ids:
        return 0
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return _advance(_claim(limit=len(ids), now=now, ids=ids), now)
    except Exception:
        log.exception("journey batch failed; advancing one by one")
        return _advance_singly(limit=len(ids), now=now, ids=ids)


def _advance_singly(*, limit: int, now: datetime, ids: Sequence[int] | None) -> int:
    done = 0
    with transaction.atomic():
        wanted = [e.pk for e in _claim(limit=limit, now=now, ids=ids)]
    for pk in wanted:
        try:
            with transaction.atomic():
                done += _advance(_claim(limit=1, now=now, ids=[pk]), now)
        except Exception as exc:
            log.exception("journey step failed for enrollment %s", pk)
            with transaction.atomic():
                for enrollment in _claim(limit=1, now=now, ids=[pk]):
                    steps: list[Step] = []
                    _fail(enrollment, Fail(f"The step failed: {exc}"[:500]), now, steps)
                    enrollment.updated_at = now
                    Step.objects.bulk_create(steps)
                    enrollment.save(update_fields=ENROLLMENT_FIELDS)
    return done


def advance_later(ids: list[int]) -> None:
    from journeys import tasks

    try:
        tasks.enrollments_advance.delay(ids)
    except Exception:  # the broker is down: the beat's advance_due picks them up (due now)
        log.warning("could not queue the advance of %d enrollments", len(ids), exc_info=True)


def enrollments_retry(
    *,
    tenant: Tenant,
    enrollments: Iterable[Enrollment],
    journey: Journey | None = None,
    now: datetime | None = None,
) -> int:
    """Put failed enrollments back on their step, due now (attempts start again); logs a
    `retried` step. One whose contact has since started another run of the journey stays
    failed. Returns how many were retried."""
    now = now or timezone.now()
    ids = [e.pk for e in enrollments]
    retried: list[int] = []
    with transaction.atomic():
        failed = list(
            Enrollment.objects.select_for_update()
            .filter(tenant=tenant, pk__in=ids, state=Enrollment.State.FAILED)
            .filter(**({"journey": journey} if journey is not None else {}))
            .order_by("pk")
        )
        busy = set(
            Enrollment.objects.filter(
                tenant=tenant,
                state__in=OPEN,
                contact_id__in=[e.contact_id for e in failed],
                journey_id__in=[e.journey_id for e in failed],
            ).values_list("journey_id", "contact_id")
        )
        steps = []
        for enrollment in failed:
            if (enrollment.journey_id, enrollment.contact_id) in busy:
                continue
            busy.add((enrollment.journey_id, enrollment.contact_id))
            steps.append(step_log(enrollment, Step.Result.RETRIED, now, reason=enrollment.failure))
            enrollment.state = Enrollment.State.ACTIVE
            enrollment.due_at = now
            enrollment.attempts = 0
            enrollment.failure = ""
            enrollment.finished_at = None
            enrollment.updated_at = now
            retried.append(enrollment.pk)
        Step.objects.bulk_create(steps)
        Enrollment.objects.bulk_update(
            [e for e in failed if e.pk in set(retried)],
            ["state", "due_at", "attempts", "failure", "finished_at", "updated_at"],
        )
        if retried:
            transaction.on_commit(lambda: advance_later(retried), robust=True)
    return len(retried)
