"""What the facts the apps below announce do to journeys (journeys/receivers.py queues them):
an event converts enrollments whose goal it is, ends those whose journey exits on it, wakes
those waiting for it and starts those whose trigger it matches (`events_process`); a segment
change starts segment-triggered journeys (`segment_changed`); a merge of two profiles moves
their enrollments (`contacts_merge`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from journeys.kinds.goals import conversion_record
from journeys.kinds.triggers import duration, properties_match
from journeys.kinds.waits import match_holds
from journeys.models import Enrollment, Journey, JourneyVersion, Node, Step

if TYPE_CHECKING:
    from tenants.models import Tenant

from journeys.engine import (
    BATCH,
    OPEN,
    Graph,
    advance_enrollments,
    enrollments_save,
    finish,
    graphs_load,
    step_log,
)
from journeys.entry import enter
from journeys.graph import SIGNUP_EVENT

log = logging.getLogger(__name__)

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
    *,
    tenant: Tenant,
    event_ids: Sequence[int],
    now: datetime | None = None,
    occurred: tuple[datetime, datetime] | None = None,
) -> EventsOutcome:
    """What recorded events do to journeys: end open enrollments on exit events, count
    conversions, wake waits, then enter contacts into journeys they trigger; and run the
    woken and the new at once. Safe to run twice for the same events. `occurred`, the
    events' earliest and latest times when known, keeps the look-up to their months."""
    from audience.models import Event

    now = now or timezone.now()
    found = Event.objects.filter(tenant=tenant, pk__in=list(event_ids))
    if occurred is not None:
        found = found.filter(occurred_at__gte=occurred[0], occurred_at__lte=occurred[1])
    events: list[dict[str, Any]] = [
        dict(row)
        for row in found.order_by("occurred_at", "pk").values(
            "pk", "contact_id", "name", "properties", "occurred_at", "received_at"
        )
    ]
    outcome = EventsOutcome()
    if not events:
        return outcome
    _events_on_open(tenant, events, now, outcome)
    _events_trigger(tenant, events, now, outcome)
    if outcome.started:
        # The same events again for those who just entered: an order recorded right after the
        # "Product Added" that started a cart journey (in this very call) ends or converts it
        # before its first step, as it would have a moment later.
        _events_on_open(tenant, events, now, outcome, only=outcome.started)
    advance_enrollments(ids=outcome.woken + outcome.started, now=now)
    return outcome


def _after_entry(row: dict[str, Any], enrollment: Enrollment) -> bool:
    """Whether an event belongs to this enrollment's time: recorded after the event that
    started it (a later primary key: events are numbered as they are stored, so an order
    recorded a moment after the trigger counts even when this task runs later), or, for an
    enrollment no event started, not before it entered."""
    trigger_id = (enrollment.context.get("event") or {}).get("id")
    if isinstance(trigger_id, int):
        return bool(row["pk"] > trigger_id)
    return (
        row["occurred_at"] >= enrollment.entered_at or row["received_at"] >= enrollment.entered_at
    )


def _events_on_open(
    tenant: Tenant,
    events: list[dict[str, Any]],
    now: datetime,
    outcome: EventsOutcome,
    only: Sequence[int] | None = None,
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
            .filter(**({"pk__in": list(only)} if only is not None else {}))
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
                            step_log(
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
                            finish(enrollment, Enrollment.State.CONVERTED, now)
                            break
                if row["name"] in (version.exit_events or []):
                    steps.append(step_log(enrollment, Step.Result.EXITED, now, event=row["name"]))
                    finish(enrollment, Enrollment.State.EXITED, now)
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


def live_graphs(tenant: Tenant, kinds: Sequence[str]) -> dict[int, Graph]:
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
    graphs = live_graphs(tenant, ["trigger_event", "trigger_signup"])
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
                enrollment = enter(
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
    for graph in live_graphs(tenant, ["trigger_segment"]).values():
        trigger = graph.trigger
        if trigger is None or str(trigger.settings.get("segment")) != segment_public_id:
            continue
        exiting = trigger.settings.get("direction") == "exited"
        name = "Segment Exited" if exiting else "Segment Entered"
        for contact_id in exited if exiting else entered:
            with transaction.atomic():
                enrollment = enter(
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
            steps.append(step_log(enrollment, Step.Result.EXITED, now, reason="merged"))
            finish(enrollment, Enrollment.State.EXITED, now)
            enrollment.updated_at = now
            exits.append(enrollment)
        else:
            open_targets.add(key)
    Step.objects.bulk_create(steps)
    enrollments_save(exits)
    absorbed = {e.contact_id for e in rows if e.contact_id in merged}
    if not absorbed:  # the usual merge: a visitor who was in no journey
        return 0
    # One statement for the whole merge, however many profiles it absorbed.
    return Enrollment.objects.filter(tenant=tenant, contact_id__in=absorbed).update(
        contact_id=Case(
            *(When(contact_id=a, then=Value(merged[a])) for a in sorted(absorbed)),
            output_field=IntegerField(),
        )
    )
