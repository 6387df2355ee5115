"""Writes for journeys: every change the editor, the API, the admin and the presets make.

Every function is keyword-only and transactional, and trusts that `journey` was loaded through
the gatekeeper (`journeys.selectors.journey_get`); it touches only that journey's tenant's rows.
Each also takes `tenant=` (DESIGN §3: passed explicitly; optional, since the journey carries
it) and answers Http404 when it isn't the journey's. Editing functions lock the journey row, so
two tabs editing at once take turns. `actor` (a user or None) is accepted wherever a person acts.

    journey_create(*, tenant, name, actor=None, description="", graph=None, preset="",
                   settings=None) -> Journey               with version 1 as its draft
    journey_update(*, journey, name=KEEP, description=KEEP) -> Journey
    journey_settings_update(*, journey, reentry=KEEP, reentry_days=KEEP, max_enrollments=KEEP,
                            exit_on_goal=KEEP, exit_events=KEEP) -> JourneyVersion (the draft)
    journey_draft_get_or_create(*, journey) -> JourneyVersion
    node_add(*, journey, kind, after=None, settings=None, label="", x=None, y=None) -> Node
    node_update(*, journey, key, settings=KEEP, label=KEEP, kind=KEEP) -> Node
    node_move(*, journey, key, x, y) -> Node
    node_delete(*, journey, key) -> None
    edge_connect(*, journey, source, port, target) -> Edge
    edge_disconnect(*, journey, source, port) -> None
    graph_replace(*, journey, graph, settings=None) -> JourneyVersion (the draft)
    journey_publish(*, journey, actor=None, move_waiting=False) -> JourneyVersion
    journey_pause / journey_resume / journey_archive(*, journey, actor=None) -> Journey
    journey_delete(*, journey) -> None                      only if never published
    journey_enroll(*, journey, contact, data=None) -> Enrollment   API-triggered journeys
    enrollments_retry(*, journey, enrollments) -> int       failed ones, by the engine
    journey_demo_seed(*, tenant, actor=None) -> int         the demo's journeys (journeys/demo.py)

All editing goes to the draft (created on the first edit after a publish, copied from the
published version with the same node keys). Errors:

    JourneyError(message, fields={field: message})   refused; `fields` for forms and the API
                                                      (`.field`: the first of them, or "")
    JourneyConflict(message)                          (a JourneyError) the journey's state
                                                      forbids it: the API's 409
    JourneyGraphInvalid(problems)                     publish refused: `problems` are
                                                      graph.Problem(node_key, field, message)

Saving a step's settings stores what was posted even when the kind refuses it (the normalised
settings when it accepts them): a marketer can save half-done work, the editor shows the kind's
messages on the card (`selectors.journey_problems`), and publishing refuses until they are fixed.
Only what could never be right is refused at once: unknown kinds, ports or steps, a step
leading to itself, a path into the trigger, a second trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from journeys import graph as graph_rules
from journeys import node_kinds
from journeys.models import Edge, Enrollment, Journey, JourneyVersion, Node, Reentry, Step
from journeys.node_kinds import Category, NodeSettingsError
from journeys.selectors import (
    OPEN_STATES,
    _own,
    journey_draft,
    journey_published,
    reference_problems,
    version_graph,
)
from tenants.models import Tenant

if TYPE_CHECKING:
    from audience.models import Contact


class _Keep:
    """The default of optional fields: leave the value as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()

DEFAULT_TRIGGER = "trigger_event"
SETTINGS = ("reentry", "reentry_days", "max_enrollments", "exit_on_goal", "exit_events")
MOVE_BATCH = 1000


class JourneyError(ValueError):
    """A change the journey refuses. `fields` maps a field ("name", "reentry_days", a settings
    key, a graph JSON path) to a message; `message` says it in one sentence."""

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    @property
    def field(self) -> str:
        """The first field at fault, or "" (the journey as a whole)."""
        return next(iter(self.fields), "")


class JourneyConflict(JourneyError):
    """The journey's state forbids this (pausing a journey that isn't live, deleting a
    published one, enrolling into one that isn't live or not API-triggered…): the API's 409."""


class JourneyGraphInvalid(JourneyError):
    """Publishing refused: the draft breaks the graph rules; `problems` name the steps."""

    def __init__(self, problems: list[graph_rules.Problem]) -> None:
        first = problems[0].message if problems else ""
        n = len(problems)
        super().__init__(
            f"The journey can't be published yet: {first}"
            + (f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else "")
        )
        self.problems = problems

    @property
    def node_keys(self) -> list[str]:
        return sorted({p.node_key for p in self.problems if p.node_key})


# --- helpers ---------------------------------------------------------------------------------


def _lock(journey: Journey) -> Journey:
    """The journey row, locked until the transaction ends (edits and publishes take turns)."""
    return Journey.objects.select_for_update().get(tenant_id=journey.tenant_id, pk=journey.pk)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise JourneyError("Give the journey a name.", fields={"name": "Give the journey a name."})
    if len(name) > 120:
        message = "The name is longer than 120 characters."
        raise JourneyError(message, fields={"name": message})
    return name


def _touch(journey: Journey) -> None:
    journey.updated_at = timezone.now()
    journey.save(update_fields=["updated_at"])


def _kind(key: str) -> node_kinds.NodeKind:
    try:
        return node_kinds.get(key)
    except NodeSettingsError:
        message = f"There is no kind of step called “{key}”."
        raise JourneyError(message, fields={"kind": message}) from None


def _normalised(kind: node_kinds.NodeKind, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The kind's normalised settings, or what was given when the kind refuses them (the
    problems are shown on the card and stop publishing)."""
    try:
        return kind.validate(dict(settings))
    except NodeSettingsError:
        return dict(settings)


def _clean_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The journey settings in `values` checked, or JourneyError with a message per field."""
    errors: dict[str, str] = {}
    clean = dict(values)
    if "reentry" in clean and clean["reentry"] not in Reentry.values:
        errors["reentry"] = "Choose when people may enter again."
    for name in ("reentry_days", "max_enrollments"):
        if name in clean and clean[name] is not None:
            value = clean[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors[name] = "Enter a whole number of at least 1, or leave it empty."
    if "exit_on_goal" in clean and not isinstance(clean["exit_on_goal"], bool):
        errors["exit_on_goal"] = "Say yes or no."
    if "exit_events" in clean:
        events = clean["exit_events"]
        if events is None:
            events = []
        if not isinstance(events, list) or not all(
            isinstance(e, str) and e.strip() and len(e) <= 200 for e in events
        ):
            errors["exit_events"] = "List event names (each up to 200 characters)."
        else:
            clean["exit_events"] = list(dict.fromkeys(e.strip() for e in events))
    if errors:
        raise JourneyError(next(iter(errors.values())), fields=errors)
    return clean


def _apply_settings(version: JourneyVersion, values: Mapping[str, Any]) -> None:
    clean = _clean_settings(values)
    for name, value in clean.items():
        setattr(version, name, value)
    if version.reentry == Reentry.AFTER and not version.reentry_days:
        message = "Say after how many days people may enter again."
        raise JourneyError(message, fields={"reentry_days": message})
    if version.reentry != Reentry.AFTER:
        version.reentry_days = None
    version.save(update_fields=list(SETTINGS))


def _write_graph(version: JourneyVersion, graph: graph_rules.Graph) -> None:
    Node.objects.bulk_create(
        Node(
            tenant_id=version.tenant_id,
            version=version,
            key=n.key,
            kind=n.kind,
            label=n.label,
            settings=n.settings,
            x=n.x,
            y=n.y,
        )
        for n in graph.nodes
    )
    Edge.objects.bulk_create(
        Edge(
            tenant_id=version.tenant_id,
            version=version,
            source=e.source,
            port=e.port,
            target=e.target,
        )
        for e in graph.edges
    )


def _parse_graph(data: object) -> graph_rules.Graph:
    try:
        return graph_rules.graph_from_json(data)
    except graph_rules.GraphError as exc:
        raise JourneyError(str(exc), fields={exc.path or "graph": exc.message}) from None


def _default_graph() -> graph_rules.Graph:
    kind = node_kinds.get(DEFAULT_TRIGGER)
    return graph_rules.Graph(
        nodes=[graph_rules.GraphNode(key="n1", kind=DEFAULT_TRIGGER, settings=kind.defaults())]
    )


# --- journeys --------------------------------------------------------------------------------


@transaction.atomic
def journey_create(
    *,
    tenant: Tenant,
    name: str,
    actor: Any = None,
    description: str = "",
    graph: Mapping[str, Any] | None = None,
    preset: str = "",
    settings: Mapping[str, Any] | None = None,
) -> Journey:
    """A new journey (status draft) whose version 1 is a draft: `graph` (graph JSON) or a lone
    "When an event happens" trigger; `settings` as journey_settings_update takes them."""
    parsed = _parse_graph(graph) if graph is not None else _default_graph()
    journey = Journey(
        tenant=tenant,
        name=_clean_name(name),
        description=(description or "").strip(),
        preset=preset,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            journey.save()
    except IntegrityError:
        message = "A journey with this name already exists."
        raise JourneyError(message, fields={"name": message}) from None
    version = JourneyVersion.objects.create(tenant=tenant, journey=journey, number=1)
    if settings:
        _apply_settings(version, settings)
    _write_graph(version, parsed)
    return journey


@transaction.atomic
def journey_update(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    name: str | _Keep = KEEP,
    description: str | _Keep = KEEP,
) -> Journey:
    """Rename or redescribe (not versioned: the journey's identity, not its behaviour)."""
    _own(tenant, journey)
    locked = _lock(journey)
    if not isinstance(name, _Keep):
        locked.name = _clean_name(name)
    if not isinstance(description, _Keep):
        locked.description = (description or "").strip()
    locked.updated_at = timezone.now()
    try:
        with transaction.atomic():
            locked.save(update_fields=["name", "description", "updated_at"])
    except IntegrityError:
        message = "A journey with this name already exists."
        raise JourneyError(message, fields={"name": message}) from None
    journey.name, journey.description = locked.name, locked.description
    journey.updated_at = locked.updated_at
    return journey


@transaction.atomic
def journey_settings_update(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    reentry: str | _Keep = KEEP,
    reentry_days: int | _Keep | None = KEEP,
    max_enrollments: int | _Keep | None = KEEP,
    exit_on_goal: bool | _Keep = KEEP,
    exit_events: list[str] | _Keep = KEEP,
) -> JourneyVersion:
    """Change the draft's journey settings (published with the graph)."""
    _own(tenant, journey)
    values = {
        "reentry": reentry,
        "reentry_days": reentry_days,
        "max_enrollments": max_enrollments,
        "exit_on_goal": exit_on_goal,
        "exit_events": exit_events,
    }
    draft = journey_draft_get_or_create(journey=journey)
    _apply_settings(draft, {k: v for k, v in values.items() if not isinstance(v, _Keep)})
    _touch(journey)
    return draft


@transaction.atomic
def journey_draft_get_or_create(
    *, tenant: Tenant | None = None, journey: Journey
) -> JourneyVersion:
    """The journey's draft; if it has none, a new one copied from the published version (or
    the newest): same node keys, edges and settings, number one higher than any before."""
    _own(tenant, journey)
    _lock(journey)
    draft = journey_draft(journey=journey)
    if draft is not None:
        return draft
    source = journey_published(journey=journey) or (
        JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey)
        .order_by("-number")
        .first()
    )
    highest = JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey).aggregate(
        n=Max("number")
    )["n"]
    draft = JourneyVersion.objects.create(
        tenant_id=journey.tenant_id,
        journey=journey,
        number=(highest or 0) + 1,
        **({name: getattr(source, name) for name in SETTINGS} if source else {}),
    )
    _write_graph(draft, version_graph(version=source) if source else _default_graph())
    return draft


# --- editing the draft -----------------------------------------------------------------------


def _node(draft: JourneyVersion, key: str) -> Node:
    node = Node.objects.filter(tenant_id=draft.tenant_id, version=draft, key=key).first()
    if node is None:
        raise JourneyError("That step doesn't exist (any more).", fields={"key": "No such step."})
    return node


def _ports(node: Node) -> list[str]:
    return graph_rules.node_ports(graph_rules.GraphNode(node.key, node.kind, node.settings))


def _refuse_port(node: Node, port: str) -> None:
    if port not in _ports(node):
        message = f"This step has no “{port}” path."
        raise JourneyError(message, fields={"port": message})


def _is_trigger(kind: str) -> bool:
    return node_kinds.is_registered(kind) and node_kinds.get(kind).category == Category.TRIGGER


def _has_trigger(draft: JourneyVersion, *, besides: str = "") -> bool:
    kinds = Node.objects.filter(tenant_id=draft.tenant_id, version=draft).exclude(key=besides)
    return any(_is_trigger(k) for k in kinds.values_list("kind", flat=True))


@transaction.atomic
def node_add(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    kind: str,
    after: tuple[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    label: str = "",
    x: int | None = None,
    y: int | None = None,
) -> Node:
    """Add a step of `kind` to the draft, its settings the kind's defaults updated with
    `settings`. With `after=(source_key, port)` it is connected from that port; if the port led
    somewhere already, the new step goes in between (its first port leads on to the old
    target). Refuses a second trigger, and a trigger after anything."""
    _own(tenant, journey)
    node_kind = _kind(kind)
    draft = journey_draft_get_or_create(journey=journey)
    is_trigger = node_kind.category == Category.TRIGGER
    if is_trigger and _has_trigger(draft):
        message = "The journey has a trigger already; change that one instead."
        raise JourneyError(message, fields={"kind": message})
    if is_trigger and after is not None:
        message = "A trigger starts the journey; nothing can lead to it."
        raise JourneyError(message, fields={"kind": message})
    source = None
    if after is not None:
        source = _node(draft, after[0])
        _refuse_port(source, after[1])
    # A key no version of the journey has used: a deleted step's key must not come back as
    # another step, or publishing would move the people still at the old one onto it.
    used = Node.objects.filter(tenant_id=draft.tenant_id, version__journey=journey)
    node = Node.objects.create(
        tenant_id=draft.tenant_id,
        version=draft,
        key=graph_rules.new_key(used.values_list("key", flat=True)),
        kind=kind,
        label=(label or "").strip()[: graph_rules.LABEL_MAX],
        settings=_normalised(node_kind, {**node_kind.defaults(), **(settings or {})}),
        x=x,
        y=y,
    )
    if source is not None and after is not None:
        port = after[1]
        old = Edge.objects.filter(
            tenant_id=draft.tenant_id, version=draft, source=source.key, port=port
        ).first()
        if old is not None:
            new_ports = _ports(node)
            if new_ports:
                Edge.objects.create(
                    tenant_id=draft.tenant_id,
                    version=draft,
                    source=node.key,
                    port=new_ports[0],
                    target=old.target,
                )
            old.target = node.key
            old.save(update_fields=["target"])
        else:
            Edge.objects.create(
                tenant_id=draft.tenant_id,
                version=draft,
                source=source.key,
                port=port,
                target=node.key,
            )
    _touch(journey)
    return node


@transaction.atomic
def node_update(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    key: str,
    settings: Mapping[str, Any] | _Keep = KEEP,
    label: str | _Keep = KEEP,
    kind: str | _Keep = KEEP,
) -> Node:
    """Save a step's settings (as posted; see the module's docstring), label, or kind (a
    trigger can become another trigger: its settings start from the new kind's defaults).
    Connections on ports the step no longer has (a split with fewer paths) are removed."""
    _own(tenant, journey)
    draft = journey_draft_get_or_create(journey=journey)
    node = _node(draft, key)
    if not isinstance(kind, _Keep) and kind != node.kind:
        new_kind = _kind(kind)
        if _is_trigger(node.kind) and new_kind.category != Category.TRIGGER:
            message = "The trigger can only become another kind of trigger."
            raise JourneyError(message, fields={"kind": message})
        if new_kind.category == Category.TRIGGER and not _is_trigger(node.kind):
            if _has_trigger(draft, besides=key):
                message = "The journey has a trigger already; change that one instead."
                raise JourneyError(message, fields={"kind": message})
            if Edge.objects.filter(tenant_id=draft.tenant_id, version=draft, target=key).exists():
                message = "A step that others lead to can't become a trigger."
                raise JourneyError(message, fields={"kind": message})
        node.kind = kind
        if isinstance(settings, _Keep):
            settings = new_kind.defaults()
    if not isinstance(settings, _Keep):
        if not isinstance(settings, Mapping):
            raise JourneyError("Settings must be an object.", fields={"settings": "Not an object."})
        node.settings = _normalised(_kind(node.kind), settings)
    if not isinstance(label, _Keep):
        node.label = (label or "").strip()[: graph_rules.LABEL_MAX]
    node.save(update_fields=["kind", "settings", "label"])
    Edge.objects.filter(tenant_id=draft.tenant_id, version=draft, source=key).exclude(
        port__in=_ports(node)
    ).delete()
    _touch(journey)
    return node


@transaction.atomic
def node_move(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    key: str,
    x: int | None,
    y: int | None,
) -> Node:
    """Remember where the step was dragged (None, None: back to the automatic layout)."""
    _own(tenant, journey)
    draft = journey_draft_get_or_create(journey=journey)
    node = _node(draft, key)
    limit = graph_rules.COORDINATE_MAX  # what the column and the canvas hold
    node.x = None if x is None else max(-limit, min(limit, int(x)))
    node.y = None if y is None else max(-limit, min(limit, int(y)))
    node.save(update_fields=["x", "y"])
    return node


@transaction.atomic
def node_delete(
    *, tenant: Tenant | None = None, journey: Journey, actor: Any = None, key: str
) -> None:
    """Remove a step and its connections. When it had exactly one way on, the paths that led
    to it lead there instead (deleting a step from a chain keeps the chain). The trigger can't
    be deleted (change its kind instead)."""
    _own(tenant, journey)
    draft = journey_draft_get_or_create(journey=journey)
    node = _node(draft, key)
    if _is_trigger(node.kind) and not _has_trigger(draft, besides=key):
        message = "The trigger can't be deleted; change what it waits for instead."
        raise JourneyError(message, fields={"key": message})
    edges = Edge.objects.filter(tenant_id=draft.tenant_id, version=draft)
    outgoing = list(edges.filter(source=key))
    incoming = list(edges.filter(target=key).exclude(source=key))
    Edge.objects.filter(pk__in=[e.pk for e in outgoing]).delete()
    node.delete()
    onward = outgoing[0].target if len(outgoing) == 1 and outgoing[0].target != key else None
    for edge in incoming:
        if onward is None or onward == edge.source:
            edge.delete()
        else:
            edge.target = onward
            edge.save(update_fields=["target"])
    _touch(journey)


@transaction.atomic
def edge_connect(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    source: str,
    port: str,
    target: str,
) -> Edge:
    """Connect `source`'s `port` to `target` (replacing what that port led to). Refuses an
    unknown step or port, a step leading to itself, and a path into the trigger; loops without
    a wait are allowed while editing (publishing refuses them)."""
    _own(tenant, journey)
    draft = journey_draft_get_or_create(journey=journey)
    source_node = _node(draft, source)
    _refuse_port(source_node, port)
    target_node = _node(draft, target)
    if source == target:
        message = "A step can't lead to itself."
        raise JourneyError(message, fields={"target": message})
    if _is_trigger(target_node.kind):
        message = "Nothing can lead back into the trigger."
        raise JourneyError(message, fields={"target": message})
    edge, _ = Edge.objects.update_or_create(
        tenant_id=draft.tenant_id,
        version=draft,
        source=source,
        port=port,
        defaults={"target": target},
    )
    _touch(journey)
    return edge


@transaction.atomic
def edge_disconnect(
    *, tenant: Tenant | None = None, journey: Journey, actor: Any = None, source: str, port: str
) -> None:
    """Remove the connection leaving `source` by `port` (nothing to remove: nothing done)."""
    _own(tenant, journey)
    draft = journey_draft_get_or_create(journey=journey)
    Edge.objects.filter(tenant_id=draft.tenant_id, version=draft, source=source, port=port).delete()
    _touch(journey)


@transaction.atomic
def graph_replace(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    graph: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    actor: Any = None,
) -> JourneyVersion:
    """Replace the draft's whole graph (the API's PUT). Refuses JSON that can't be stored
    (JourneyError, fields keyed by JSON path); the publishing rules are checked at publish."""
    _own(tenant, journey)
    parsed = _parse_graph(graph)
    draft = journey_draft_get_or_create(journey=journey)
    if settings:
        _apply_settings(draft, settings)
    Edge.objects.filter(tenant_id=draft.tenant_id, version=draft).delete()
    Node.objects.filter(tenant_id=draft.tenant_id, version=draft).delete()
    _write_graph(draft, parsed)
    _touch(journey)
    return draft


# --- publishing and the journey's life -------------------------------------------------------


@transaction.atomic
def journey_publish(
    *, tenant: Tenant | None = None, journey: Journey, actor: Any = None, move_waiting: bool = False
) -> JourneyVersion:
    """Publish the draft: refuses it with JourneyGraphInvalid (the problems name the steps)
    when it breaks a rule; else freezes it (published, with the graph's summary for the
    engine), archives the version published before, and makes the journey live (a paused one
    stays paused). With `move_waiting`, people in flight on older versions at a step that still
    exists (same key) move to the new version and run that step again now (a changed wait
    applies from when they arrived); each move is logged as a Step "moved". The others finish
    on the version they are on."""
    _own(tenant, journey)
    locked = _lock(journey)
    if locked.status == Journey.Status.ARCHIVED:
        raise JourneyConflict("An archived journey can't be published.")
    draft = journey_draft(journey=journey)
    if draft is None:
        raise JourneyConflict("There are no changes to publish.")
    graph = version_graph(version=draft)
    problems = graph_rules.validate(graph)
    problems += reference_problems(tenant_id=journey.tenant_id, graph=graph)
    if draft.reentry == Reentry.AFTER and not draft.reentry_days:
        problems.append(
            graph_rules.Problem("", "reentry_days", "Say after how many days people may re-enter.")
        )
    if problems:
        raise JourneyGraphInvalid(problems)
    now = timezone.now()
    JourneyVersion.objects.filter(
        tenant_id=journey.tenant_id, journey=journey, state=JourneyVersion.State.PUBLISHED
    ).update(state=JourneyVersion.State.ARCHIVED)
    # Settings normalised as the kinds have them, now that they are all valid.
    nodes = list(Node.objects.filter(tenant_id=draft.tenant_id, version=draft))
    for node in nodes:
        node.settings = node_kinds.get(node.kind).validate(node.settings)
    Node.objects.bulk_update(nodes, ["settings"])
    summary = graph_rules.summary(version_graph(version=draft))
    draft.state = JourneyVersion.State.PUBLISHED
    draft.published_at = now
    draft.published_by = actor if getattr(actor, "pk", None) else None
    draft.trigger_kind = summary.trigger_kind
    draft.trigger_event = summary.trigger_event
    draft.goal_events = summary.goal_events
    draft.save(
        update_fields=[
            "state",
            "published_at",
            "published_by",
            "trigger_kind",
            "trigger_event",
            "goal_events",
        ]
    )
    if locked.status in (Journey.Status.DRAFT, Journey.Status.LIVE):
        locked.status = Journey.Status.LIVE
    locked.updated_at = now
    locked.save(update_fields=["status", "updated_at"])
    journey.status, journey.updated_at = locked.status, locked.updated_at
    if move_waiting:
        _move_in_flight(journey, draft, {n.key for n in nodes}, now)
    return draft


def _move_in_flight(journey: Journey, to: JourneyVersion, keys: set[str], now: Any) -> int:
    """Move the open enrollments of older versions standing at a step in `keys` onto `to`,
    due now (the engine runs their step again). Locks them first, so an engine step in
    progress finishes before (and the move sees where it left them)."""
    numbers = dict(
        JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey).values_list(
            "pk", "number"
        )
    )
    rows = list(
        Enrollment.objects.select_for_update()
        .filter(
            tenant_id=journey.tenant_id,
            journey=journey,
            state__in=OPEN_STATES,
            node_key__in=keys,
        )
        .exclude(version=to)
        .order_by("pk")
        .values_list("pk", "version_id", "node_key")
    )
    for start in range(0, len(rows), MOVE_BATCH):
        batch = rows[start : start + MOVE_BATCH]
        Enrollment.objects.filter(tenant_id=journey.tenant_id, pk__in=[r[0] for r in batch]).update(
            version=to,
            state=Enrollment.State.ACTIVE,
            due_at=now,
            wait_event="",
            wait_match={},
            updated_at=now,
        )
        Step.objects.bulk_create(
            Step(
                tenant_id=journey.tenant_id,
                enrollment_id=pk,
                version=to,
                node_key=node_key,
                result=Step.Result.MOVED,
                detail={"from": numbers[version_id], "to": to.number},
                created_at=now,
            )
            for pk, version_id, node_key in batch
        )
    return len(rows)


def _transition(journey: Journey, allowed: Iterable[str], to: str, refusal: str) -> Journey:
    locked = _lock(journey)
    if locked.status not in allowed:
        raise JourneyConflict(refusal)
    locked.status = to
    locked.updated_at = timezone.now()
    locked.save(update_fields=["status", "updated_at"])
    journey.status, journey.updated_at = locked.status, locked.updated_at
    return journey


@transaction.atomic
def journey_pause(*, tenant: Tenant | None = None, journey: Journey, actor: Any = None) -> Journey:
    """Hold a live journey: no one enters, no one advances, until it resumes."""
    _own(tenant, journey)
    return _transition(
        journey,
        (Journey.Status.LIVE,),
        Journey.Status.PAUSED,
        "Only a live journey can be paused.",
    )


@transaction.atomic
def journey_resume(*, tenant: Tenant | None = None, journey: Journey, actor: Any = None) -> Journey:
    """Let a paused journey run again; what fell due meanwhile is picked up by the engine
    (due times are left as they were)."""
    _own(tenant, journey)
    return _transition(
        journey,
        (Journey.Status.PAUSED,),
        Journey.Status.LIVE,
        "Only a paused journey can be resumed.",
    )


@transaction.atomic
def journey_archive(
    *, tenant: Tenant | None = None, journey: Journey, actor: Any = None
) -> Journey:
    """Stop the journey for good: everyone in it exits (logged, reason "archived"). Archiving
    an archived journey changes nothing."""
    _own(tenant, journey)
    locked = _lock(journey)
    if locked.status == Journey.Status.ARCHIVED:
        journey.status = locked.status
        return journey
    now = timezone.now()
    rows = list(
        Enrollment.objects.select_for_update()
        .filter(tenant_id=journey.tenant_id, journey=journey, state__in=OPEN_STATES)
        .order_by("pk")
        .values_list("pk", "version_id", "node_key")
    )
    for start in range(0, len(rows), MOVE_BATCH):
        batch = rows[start : start + MOVE_BATCH]
        Enrollment.objects.filter(tenant_id=journey.tenant_id, pk__in=[r[0] for r in batch]).update(
            state=Enrollment.State.EXITED,
            due_at=None,
            wait_event="",
            wait_match={},
            finished_at=now,
            updated_at=now,
        )
        Step.objects.bulk_create(
            Step(
                tenant_id=journey.tenant_id,
                enrollment_id=pk,
                version_id=version_id,
                node_key=node_key,
                result=Step.Result.EXITED,
                detail={"reason": "archived"},
                created_at=now,
            )
            for pk, version_id, node_key in batch
        )
    locked.status = Journey.Status.ARCHIVED
    locked.updated_at = now
    locked.save(update_fields=["status", "updated_at"])
    journey.status, journey.updated_at = locked.status, locked.updated_at
    return journey


@transaction.atomic
def journey_delete(*, tenant: Tenant | None = None, journey: Journey, actor: Any = None) -> None:
    """Delete a journey that was never published (a published one is archived instead)."""
    _own(tenant, journey)
    _lock(journey)
    published = JourneyVersion.objects.filter(
        tenant_id=journey.tenant_id, journey=journey, published_at__isnull=False
    ).exists()
    if published:
        raise JourneyConflict("A journey that has been published can't be deleted; archive it.")
    journey.delete()


# --- people ----------------------------------------------------------------------------------


def journey_enroll(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    contact: Contact,
    data: Mapping[str, Any] | None = None,
) -> Enrollment:
    """Enroll `contact` now, with `data` (the API trigger): only a live journey whose trigger is
    "When enrolled through the API". The journey's re-entry and limit rules apply (the engine's
    `enrollment_start` decides; JourneyError when it refuses)."""
    _own(tenant, journey)
    if contact.tenant_id != journey.tenant_id:
        raise JourneyError("No such contact.", fields={"contact": "No such contact."})
    if journey.status != Journey.Status.LIVE:
        raise JourneyConflict("Only a live journey can take people in.")
    published = journey_published(journey=journey)
    if published is None or published.trigger_kind != "trigger_api":
        raise JourneyConflict("This journey doesn't take people in through the API.")
    from journeys import entry  # the engine imports these services' module-mates

    enrollment = entry.enrollment_start(
        tenant=journey.tenant,
        journey=journey,
        contact=contact,
        context={"data": dict(data or {})},
        now=None,
    )
    if enrollment is None:
        raise JourneyConflict(
            "The contact can't enter this journey now (they are in it already, or its"
            " re-entry rule or limit stops them)."
        )
    return enrollment


def enrollments_retry(
    *,
    tenant: Tenant | None = None,
    journey: Journey,
    actor: Any = None,
    enrollments: Iterable[Enrollment],
) -> int:
    """Try failed enrollments of `journey` again (the engine re-runs the failed step); others'
    and other journeys' enrollments are ignored. Returns how many were retried."""
    _own(tenant, journey)
    from journeys import engine

    if journey.status not in (Journey.Status.LIVE, Journey.Status.PAUSED):
        # An archived journey runs no one: a retried enrollment would stay open for ever.
        raise JourneyConflict("This journey is archived: its people can't be retried.")
    pks = [e.pk for e in enrollments]
    mine = Enrollment.objects.filter(
        tenant_id=journey.tenant_id,
        journey=journey,
        pk__in=pks,
        state=Enrollment.State.FAILED,
    )
    result = engine.enrollments_retry(tenant=journey.tenant, journey=journey, enrollments=mine)
    return int(result) if result is not None else 0


def journey_demo_seed(*, tenant: Tenant, actor: Any = None) -> int:
    """The demo tenant's running journeys with people at several steps, once (journeys/demo.py,
    the presets' module): the enrollments created, 0 when seeded already."""
    from journeys.demo import demo_seed

    return int(demo_seed(tenant=tenant, actor=actor))
