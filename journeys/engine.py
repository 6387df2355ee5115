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

Entry points:
    enrollment_start(tenant=, journey=, contact=, context=, now=)    -> Enrollment | None
    advance_due(limit=, now=)                                        -> enrollments advanced
    advance_enrollments(ids=, now=)                                  -> enrollments advanced
    enrollments_retry(tenant=, enrollments=, now=)                   -> enrollments retried
    events_process(tenant=, event_ids=, now=)                        -> EventsOutcome
    segment_changed(tenant=, segment=, entered=, exited=, now=)      -> enrollments started
    contacts_merge(tenant=, merged=)                                 -> enrollments moved
    date_triggers_scan(now=)                                         -> enrollments started
"""

from __future__ import annotations

import logging
import os
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from journeys import node_kinds
from journeys.kinds.goals import conversion_record
from journeys.kinds.triggers import duration, parse_time, properties_match
from journeys.kinds.waits import local_moment, match_holds, zone_of
from journeys.models import Enrollment, Journey, JourneyVersion, Node, Reentry, Step
from journeys.node_kinds import Fail, Finish, Follow, StepContext, Wait

if TYPE_CHECKING:
    from audience.models import Contact
    from messaging.models import Template
    from messaging.services import Decision
    from tenants.models import Tenant

log = logging.getLogger(__name__)

OPEN = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)
MAX_HOPS = 50  # nodes one enrollment may pass in one run (graph rules forbid cycles without waits)
BATCH = 500
SIGNUP_EVENT = "Signed Up"
DATE_LOOKBACK = timedelta(hours=36)  # a date trigger whose moment passed this long ago is missed
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


def _step(
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


def _finish(enrollment: Enrollment, state: str, now: datetime) -> None:
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
            steps.append(_step(enrollment, FINAL_RESULTS[outcome.state], now, **outcome.detail))
            _finish(enrollment, outcome.state, now)
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
        steps.append(_step(enrollment, result, now, outcome.port, **outcome.detail))
        target = graph.edges.get((node.key, outcome.port))
        if target is None:  # the path ends here
            steps.append(_step(enrollment, Step.Result.COMPLETED, now))
            _finish(enrollment, Enrollment.State.COMPLETED, now)
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
        steps.append(_step(enrollment, Step.Result.WAITING, now, **wait.detail))


def _fail(enrollment: Enrollment, fail: Fail, now: datetime, steps: list[Step]) -> None:
    if fail.retry_at is not None:
        enrollment.attempts += 1
        enrollment.state = Enrollment.State.ACTIVE
        enrollment.due_at = fail.retry_at
        enrollment.failure = fail.reason
        steps.append(
            _step(
                enrollment,
                Step.Result.FAILED,
                now,
                reason=fail.reason,
                retry_at=fail.retry_at.isoformat(),
                attempt=enrollment.attempts,
            )
        )
        return
    steps.append(_step(enrollment, Step.Result.FAILED, now, reason=fail.reason))
    enrollment.state = Enrollment.State.FAILED
    enrollment.failure = fail.reason
    enrollment.due_at = None
    enrollment.finished_at = now


def _claim(*, limit: int, now: datetime, ids: Sequence[int] | None = None) -> list[Enrollment]:
    rows = Enrollment.objects.filter(
        state__in=OPEN, due_at__lte=now, journey__status=Journey.Status.LIVE
    )
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    # Rows another worker holds are skipped, not waited for; PostgreSQL re-checks the filter
    # on a row that was changed meanwhile, so a row advanced by another worker is not taken.
    # (SQLite has no row locks: its writers take turns on the whole database.)
    return list(
        rows.select_related("contact")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("due_at", "pk")[:limit]
    )


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


def _queue_advance(ids: list[int]) -> None:
    from journeys import tasks

    try:
        tasks.enrollments_advance.delay(ids)
    except Exception:  # the broker is down: the beat's advance_due picks them up (due now)
        log.warning("could not queue the advance of %d enrollments", len(ids), exc_info=True)


# --- entering --------------------------------------------------------------------------------


def _may_enter(
    *, version: JourneyVersion, journey_id: int, contact_id: int, now: datetime, occurrence: str
) -> bool:
    previous = Enrollment.objects.filter(
        tenant_id=version.tenant_id, journey_id=journey_id, contact_id=contact_id
    )
    if occurrence:  # a date trigger: once per date, whatever the re-entry rule
        return not previous.filter(Q(context__occurrence=occurrence) | Q(state__in=OPEN)).exists()
    last = previous.order_by("-entered_at").values_list("state", "entered_at").first()
    if last is None:
        return True
    if last[0] in OPEN or version.reentry == Reentry.NEVER:
        return False
    if version.reentry == Reentry.AFTER:
        return last[1] <= now - timedelta(days=version.reentry_days or 0)
    return True


def _enter(
    *,
    graph: Graph,
    contact_id: int,
    context: dict[str, Any],
    now: datetime,
    occurrence: str = "",
) -> Enrollment | None:
    """Enroll one contact into a published version (caller's transaction); None when the
    journey's rules or the one-open constraint say no."""
    version = graph.version
    trigger = graph.trigger
    if trigger is None:
        return None
    if version.max_enrollments is not None:
        # Serialise entries into a capped journey (its row lock) so the cap holds exactly.
        Journey.objects.select_for_update().filter(pk=version.journey_id).values_list("pk")[
            :1
        ].get()
        count = Enrollment.objects.filter(
            tenant_id=version.tenant_id, journey_id=version.journey_id
        ).count()
        if count >= version.max_enrollments:
            return None
    if not _may_enter(
        version=version,
        journey_id=version.journey_id,
        contact_id=contact_id,
        now=now,
        occurrence=occurrence,
    ):
        return None
    if occurrence:
        context = {**context, "occurrence": occurrence}
    enrollment = Enrollment(
        tenant_id=version.tenant_id,
        journey_id=version.journey_id,
        version=version,
        contact_id=contact_id,
        node_key=trigger.key,
        arrived_at=now,
        due_at=now,
        state=Enrollment.State.ACTIVE,
        context=context,
        entered_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: another process enrolled them just now
            enrollment.save(force_insert=True)
    except IntegrityError:
        return None
    Step.objects.create(
        tenant_id=version.tenant_id,
        enrollment=enrollment,
        version=version,
        node_key=trigger.key,
        result=Step.Result.ENTERED,
        detail={"trigger": trigger.kind},
        created_at=now,
    )
    return enrollment


def enrollment_start(
    *,
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    context: dict[str, Any],
    now: datetime | None = None,
    advance: bool = True,
) -> Enrollment | None:
    """Enroll `contact` into the live journey's published version now (the API trigger, a
    test, the events' triggers). None when the journey is not live, or its re-entry rule, its
    maximum or an open enrollment of the contact says no. The first steps run right after
    commit (a queued task; `advance=False` leaves them to the caller or the beat)."""
    if journey.tenant_id != tenant.pk or contact.tenant_id != tenant.pk:
        raise ValueError("the journey and the contact must be the tenant's")
    now = now or timezone.now()
    journey = Journey.objects.get(tenant=tenant, pk=journey.pk)
    if journey.status != Journey.Status.LIVE:
        return None
    version_id = (
        JourneyVersion.objects.filter(
            tenant=tenant, journey=journey, state=JourneyVersion.State.PUBLISHED
        )
        .values_list("pk", flat=True)
        .first()
    )
    if version_id is None:
        return None
    graph = graphs_load([version_id])[version_id]
    with transaction.atomic():
        enrollment = _enter(graph=graph, contact_id=contact.pk, context=dict(context), now=now)
        if enrollment is not None and advance:
            ids = [enrollment.pk]
            transaction.on_commit(lambda: _queue_advance(ids), robust=True)
    return enrollment


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
            steps.append(_step(enrollment, Step.Result.RETRIED, now, reason=enrollment.failure))
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
            transaction.on_commit(lambda: _queue_advance(retried), robust=True)
    return len(retried)


# --- events: triggers, wakes, goals, exits ---------------------------------------------------


@dataclass
class EventsOutcome:
    started: list[int] = field(default_factory=list)
    woken: list[int] = field(default_factory=list)
    converted: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)


def event_dict(row: dict[str, Any]) -> dict[str, Any]:
    """An event as enrollments keep it (`context["event"]`, `woken_by`)."""
    return {
        "id": row["pk"],
        "name": row["name"],
        "properties": row["properties"] if isinstance(row["properties"], dict) else {},
        "occurred_at": row["occurred_at"].isoformat(),
    }


def events_process(
    *, tenant: Tenant, event_ids: Sequence[int], now: datetime | None = None
) -> EventsOutcome:
    """What recorded events do to journeys: end open enrollments on exit events, count
    conversions, wake waits, then enter contacts into journeys they trigger; and run the
    woken and the new at once. Safe to run twice for the same events."""
    from audience.models import Event

    now = now or timezone.now()
    events: list[dict[str, Any]] = [
        dict(row)
        for row in Event.objects.filter(tenant=tenant, pk__in=list(event_ids))
        .order_by("occurred_at", "pk")
        .values("pk", "contact_id", "name", "properties", "occurred_at", "received_at")
    ]
    outcome = EventsOutcome()
    if not events:
        return outcome
    _events_on_open(tenant, events, now, outcome)
    _events_trigger(tenant, events, now, outcome)
    advance_enrollments(ids=outcome.woken + outcome.started, now=now)
    return outcome


def _after_entry(row: dict[str, Any], enrollment: Enrollment) -> bool:
    """Whether an event belongs to this enrollment's time (not before it entered, nor the
    event that started it)."""
    if (enrollment.context.get("event") or {}).get("id") == row["pk"]:
        return False
    return (
        row["occurred_at"] >= enrollment.entered_at or row["received_at"] >= enrollment.entered_at
    )


def _events_on_open(
    tenant: Tenant, events: list[dict[str, Any]], now: datetime, outcome: EventsOutcome
) -> None:
    by_contact: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in events:
        by_contact[row["contact_id"]].append(row)
    names = {row["name"] for row in events}
    with transaction.atomic():
        # Blocking locks (a batch holding one is short); always in pk order: no deadlock.
        open_rows = list(
            Enrollment.objects.select_for_update(of=("self",))
            .filter(tenant=tenant, contact_id__in=list(by_contact), state__in=OPEN)
            .order_by("pk")
        )
        if not open_rows:
            return
        graphs = graphs_load(e.version_id for e in open_rows)
        steps: list[Step] = []
        changed = []
        for enrollment in open_rows:
            graph = graphs[enrollment.version_id]
            version = graph.version
            if not isinstance(enrollment.context, dict):
                enrollment.context = {}
            relevant = (
                set(version.exit_events or [])
                | set(version.goal_events or [])
                | {enrollment.wait_event}
            )
            if not relevant & names:
                continue
            touched = False
            for row in by_contact[enrollment.contact_id]:
                if enrollment.state not in OPEN:
                    break
                if not _after_entry(row, enrollment):
                    continue
                event = event_dict(row)
                # The goal first: an order that is both the goal and an exit event counts.
                if enrollment.converted_at is None and row["name"] in (version.goal_events or []):
                    goal = _goal_met(graph, enrollment, row)
                    if goal is not None:
                        conversion_record(
                            enrollment,
                            event,
                            goal.settings.get("revenue_property", "revenue") or "",
                            now,
                        )
                        steps.append(
                            _step(
                                enrollment,
                                Step.Result.CONVERTED,
                                now,
                                event=row["name"],
                                revenue=str(enrollment.revenue or ""),
                                goal=goal.key,
                            )
                        )
                        outcome.converted.append(enrollment.pk)
                        touched = True
                        if version.exit_on_goal:
                            _finish(enrollment, Enrollment.State.CONVERTED, now)
                            break
                if row["name"] in (version.exit_events or []):
                    steps.append(_step(enrollment, Step.Result.EXITED, now, event=row["name"]))
                    _finish(enrollment, Enrollment.State.EXITED, now)
                    outcome.exited.append(enrollment.pk)
                    touched = True
                    break
                if (
                    enrollment.state == Enrollment.State.WAITING
                    and enrollment.wait_event == row["name"]
                    and match_holds(enrollment.wait_match or {}, event["properties"])
                    and _node_filters_hold(graph, enrollment.node_key, event["properties"])
                ):
                    enrollment.context["woken_by"] = event
                    enrollment.due_at = now
                    outcome.woken.append(enrollment.pk)
                    touched = True
                    break
            if touched:
                enrollment.updated_at = now
                changed.append(enrollment)
        Step.objects.bulk_create(steps)
        enrollments_save(changed)


def _goal_met(graph: Graph, enrollment: Enrollment, row: dict[str, Any]) -> Node | None:
    """The goal node this event meets within its window after entry, if any."""
    for node in graph.nodes.values():
        s = node.settings
        if node.kind != "goal" or s.get("event") != row["name"]:
            continue
        if row["occurred_at"] > enrollment.entered_at + duration(s):
            continue
        if properties_match(row["properties"], s.get("filters") or []):
            return node
    return None


def _node_filters_hold(graph: Graph, node_key: str, properties: dict[str, Any]) -> bool:
    node = graph.nodes.get(node_key)
    return node is None or properties_match(properties, node.settings.get("filters") or [])


def _live_versions(tenant: Tenant, kinds: Sequence[str]) -> dict[int, Graph]:
    ids = JourneyVersion.objects.filter(
        tenant=tenant,
        state=JourneyVersion.State.PUBLISHED,
        journey__status=Journey.Status.LIVE,
        trigger_kind__in=list(kinds),
    ).values_list("pk", flat=True)
    return graphs_load(ids)


def _events_trigger(
    tenant: Tenant, events: list[dict[str, Any]], now: datetime, outcome: EventsOutcome
) -> None:
    names = {row["name"] for row in events}
    graphs = _live_versions(tenant, ["trigger_event", "trigger_signup"])
    for graph in graphs.values():
        trigger = graph.trigger
        if trigger is None:
            continue
        filters: list[dict[str, Any]] = []
        if trigger.kind == "trigger_signup":
            wanted = SIGNUP_EVENT
        else:
            wanted = trigger.settings.get("event") or graph.version.trigger_event
            filters = trigger.settings.get("filters") or []
        if wanted not in names:
            continue
        for row in events:
            if row["name"] != wanted or not properties_match(row["properties"], filters):
                continue
            with transaction.atomic():
                enrollment = _enter(
                    graph=graph,
                    contact_id=row["contact_id"],
                    context={"event": event_dict(row)},
                    now=now,
                )
            if enrollment is not None:
                outcome.started.append(enrollment.pk)


def segment_changed(
    *,
    tenant: Tenant,
    segment_public_id: str,
    entered: Sequence[int],
    exited: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Enter contacts who entered (or left) a segment into the journeys it triggers."""
    now = now or timezone.now()
    started: list[int] = []
    for graph in _live_versions(tenant, ["trigger_segment"]).values():
        trigger = graph.trigger
        if trigger is None or str(trigger.settings.get("segment")) != segment_public_id:
            continue
        exiting = trigger.settings.get("direction") == "exited"
        name = "Segment Exited" if exiting else "Segment Entered"
        for contact_id in exited if exiting else entered:
            with transaction.atomic():
                enrollment = _enter(
                    graph=graph,
                    contact_id=contact_id,
                    context={"event": {"name": name, "properties": {"segment": segment_public_id}}},
                    now=now,
                )
            if enrollment is not None:
                started.append(enrollment.pk)
    for start in range(0, len(started), BATCH):
        advance_enrollments(ids=started[start : start + BATCH], now=now)
    return len(started)


def contacts_merge(*, tenant: Tenant, merged: dict[int, int]) -> int:
    """Move the enrollments of absorbed contacts to the contact each became (inside the
    merge's transaction). Where both were in the same journey, the absorbed one's open run
    exits (one open run per contact and journey). Returns how many moved."""
    if not merged:
        return 0
    now = timezone.now()
    rows = list(
        Enrollment.objects.select_for_update()
        .filter(tenant=tenant, contact_id__in=list(merged) + list(set(merged.values())))
        .order_by("pk")
    )
    open_targets = {
        (e.journey_id, e.contact_id) for e in rows if e.state in OPEN and e.contact_id not in merged
    }
    steps, exits = [], []
    for enrollment in rows:
        if enrollment.contact_id not in merged or enrollment.state not in OPEN:
            continue
        key = (enrollment.journey_id, merged[enrollment.contact_id])
        if key in open_targets:
            steps.append(_step(enrollment, Step.Result.EXITED, now, reason="merged"))
            _finish(enrollment, Enrollment.State.EXITED, now)
            enrollment.updated_at = now
            exits.append(enrollment)
        else:
            open_targets.add(key)
    Step.objects.bulk_create(steps)
    Enrollment.objects.bulk_update(exits, ENROLLMENT_FIELDS)
    moved = 0
    for absorbed, target in merged.items():
        moved += Enrollment.objects.filter(tenant=tenant, contact_id=absorbed).update(
            contact_id=target
        )
    return moved


# --- date triggers ---------------------------------------------------------------------------


def _anniversary(raw: object) -> tuple[int, int] | None:
    """(month, day) of a custom date attribute ("YYYY-MM-DD", or "MM-DD")."""
    text = str(raw or "").strip()[:10]
    try:
        if len(text) == 10:
            parsed = date.fromisoformat(text)
            return parsed.month, parsed.day
        month, day = (int(p) for p in text.split("-"))
        date(2000, month, day)
        return month, day
    except ValueError:
        return None


def _occurs_on(month: int, day: int, on: date) -> bool:
    """Whether a yearly (month, day) falls on `on` (29 February on the 28th in other years)."""
    if (on.month, on.day) == (month, day):
        return True
    leap = on.year % 4 == 0 and (on.year % 100 != 0 or on.year % 400 == 0)
    return (month, day) == (2, 29) and not leap and (on.month, on.day) == (2, 28)


def date_triggers_scan(*, now: datetime | None = None) -> int:
    """Enter contacts whose date moment (their birthday, or a custom date attribute, offset by
    some days, at a local time) has passed since the last scans, once per date: the date is
    the enrollment's `occurrence`, so scanning again enrolls no one twice. Returns how many."""
    from audience.models import Contact

    now = now or timezone.now()
    started = 0
    graph_ids = JourneyVersion.objects.filter(
        state=JourneyVersion.State.PUBLISHED,
        journey__status=Journey.Status.LIVE,
        trigger_kind="trigger_date",
    ).values_list("pk", flat=True)
    for graph in graphs_load(graph_ids).values():
        trigger = graph.trigger
        if trigger is None:
            continue
        version = graph.version
        s = trigger.settings
        since = max(now - DATE_LOOKBACK, version.published_at or now - DATE_LOOKBACK)
        offset = timedelta(days=int(s.get("offset_days") or 0))
        at = parse_time(s.get("at") or "09:00")
        attribute = s.get("attribute") or "birthday"
        # Local dates anywhere on earth between `since` and now (zones span -12 h to +14 h).
        days = [
            since.date() + timedelta(days=i)
            for i in range(-1, (now.date() - since.date()).days + 2)
        ]
        anniversaries = {((d - offset).month, (d - offset).day) for d in days}
        if (2, 28) in anniversaries:
            anniversaries.add((2, 29))
        contacts = Contact.objects.filter(tenant_id=version.tenant_id)
        if attribute == "birthday":
            q = Q()
            for month, mday in anniversaries:
                q |= Q(birthday_month=month, birthday_day=mday)
            contacts = contacts.filter(q)
        else:
            contacts = contacts.filter(attributes__has_key=attribute)
        due: list[tuple[int, date]] = []
        for contact in contacts.only(
            "pk", "timezone", "birthday_month", "birthday_day", "attributes"
        ):
            if attribute == "birthday":
                yearly = (contact.birthday_month or 0, contact.birthday_day or 0)
            else:
                found = _anniversary((contact.attributes or {}).get(attribute))
                if found is None:
                    continue
                yearly = found
            zone = zone_of(contact, version.tenant)
            for day in days:
                if not _occurs_on(*yearly, day - offset):
                    continue
                moment = local_moment(day, at, zone)
                if since < moment <= now:
                    due.append((contact.pk, day))
        for contact_id, day in due:
            with transaction.atomic():
                enrollment = _enter(
                    graph=graph,
                    contact_id=contact_id,
                    context={"data": {"date": day.isoformat()}},
                    now=now,
                    occurrence=f"{attribute}:{day.isoformat()}",
                )
            if enrollment is not None:
                started += 1
    if started:
        advance_due(now=now)
    return started
