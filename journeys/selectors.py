"""Reads for journeys, including the gatekeepers that 404 on other tenants' objects.

Every function taking a journey also takes `tenant=` (DESIGN §3; optional where the journey
carries it) and answers Http404 when they disagree.

    journey_get(*, tenant, public_id) -> Journey            THE gatekeeper (Http404 otherwise)
    enrollment_get(*, tenant, public_id, journey=None) -> Enrollment   enrollments' gatekeeper
    journey_list(*, tenant, include_archived=False, status="")   QuerySet[Journey] annotated with
        live_number (published version's number or None), draft_number (or None),
        open_enrollments (active + waiting), conversions (as journey_totals counts them):
        one query, whatever the number of journeys
    journey_versions(*, journey) -> QuerySet[JourneyVersion]   newest first
    journey_draft(*, journey) / journey_published(*, journey) -> JourneyVersion | None
    journey_current(*, journey) -> JourneyVersion           the draft, else the published, else
                                                            the newest: what the editor shows
    version_graph(*, version, tenant=None) -> graph.Graph   from Node/Edge rows (2 queries)
    journey_problems(*, journey) -> list[graph.Problem]     what stops the draft from publishing
    node_stats(*, journey, version=None) -> {node_key: NodeStats}   2 queries
    journey_totals(*, journey) -> {"enrolled", "open", "conversions", "revenue"}   1 query
    journey_stats(*, journey) -> JourneyStats(nodes={key: NodeStats}, totals=journey_totals)
    node_enrollments(*, tenant, journey, node_key, state=None) -> QuerySet[Enrollment]
    journey_enrollments(*, tenant, journey, state=None, node_key="") -> QuerySet[Enrollment]
        (raw Enrollment states, or "open"; node_key: standing there now: the API's filter)
    enrollment_steps(*, enrollment) -> QuerySet[Step]       its log, oldest first

The counts on the canvas (NodeStats), per node key, across every version of the journey (keys
are stable, so a step keeps its history through publishes) or of one `version`:

    entered    distinct enrollments that have any Step at the node (they reached it)
    waiting    open enrollments (state active or waiting) standing at the node now
    completed  distinct enrollments with a Step "followed", "sent" or "completed" at the node
               (they left it by a port, an action's after deciding its message, or their path
               ended there; a goal's "converted" port counts under converted)
    converted  distinct enrollments with a Step "converted" at the node (the goal met there)
    failed     enrollments in state failed standing at the node (retryable)

`node_enrollments(state=…)` lists the people behind each count: state is one of those five
names (None: entered, i.e. everyone with a Step there or standing there now).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from core.ids import uuid_or_404
from journeys import graph as graph_rules
from journeys import node_kinds
from journeys.models import Edge, Enrollment, Journey, JourneyVersion, Node, Step
from messaging.models import Template
from segments.models import Segment
from tenants.models import Tenant

OPEN_STATES = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)
# A step "sent" is an action that decided its message and followed its port.
COMPLETED_RESULTS = (Step.Result.FOLLOWED, Step.Result.SENT, Step.Result.COMPLETED)
# Enrollments that met the goal: finished there, or went on (the journey does not exit on it).
CONVERTED = Q(state=Enrollment.State.CONVERTED) | Q(converted_at__isnull=False)
STATS = ("entered", "waiting", "completed", "converted", "failed")


@dataclass(frozen=True)
class NodeStats:
    entered: int = 0
    waiting: int = 0
    completed: int = 0
    converted: int = 0
    failed: int = 0


EMPTY_STATS = NodeStats()


def _own(tenant: Tenant | None, journey: Journey) -> None:
    """Every function takes `tenant=` as DESIGN §3 asks (optional: the journey's own when
    omitted); a journey of another tenant is as missing as an unknown one."""
    if tenant is not None and tenant.pk != journey.tenant_id:
        raise Http404("No such journey")


def journey_get(*, tenant: Tenant, public_id: object) -> Journey:
    key = uuid_or_404(public_id, what="journey")
    journey = Journey.objects.filter(tenant=tenant, public_id=key).first()
    if journey is None:
        raise Http404("No such journey")
    return journey


def enrollment_get(
    *, tenant: Tenant, public_id: object, journey: Journey | None = None
) -> Enrollment:
    """The tenant's enrollment (of `journey`, when given), or Http404."""
    key = uuid_or_404(public_id, what="enrollment")
    enrollments = Enrollment.objects.filter(tenant=tenant, public_id=key)
    if journey is not None:
        enrollments = enrollments.filter(journey=journey)
    enrollment = enrollments.select_related("journey", "version", "contact").first()
    if enrollment is None:
        raise Http404("No such enrollment")
    return enrollment


def journey_list(
    *, tenant: Tenant, include_archived: bool = False, status: str = ""
) -> QuerySet[Journey]:
    """The tenant's journeys by name, annotated (see the module's docstring); `status` keeps
    only that status (archived ones included when asked for by status)."""
    versions = JourneyVersion.objects.filter(tenant=tenant, journey=OuterRef("pk"))
    open_count = (
        Enrollment.objects.filter(tenant=tenant, journey=OuterRef("pk"), state__in=OPEN_STATES)
        .order_by()
        .values("journey")
        .annotate(n=Count("pk"))
        .values("n")
    )
    conversions = (
        Enrollment.objects.filter(CONVERTED, tenant=tenant, journey=OuterRef("pk"))
        .order_by()
        .values("journey")
        .annotate(n=Count("pk"))
        .values("n")
    )
    journeys = Journey.objects.filter(tenant=tenant)
    if status:
        journeys = journeys.filter(status=status)
    elif not include_archived:
        journeys = journeys.exclude(status=Journey.Status.ARCHIVED)
    return journeys.annotate(
        live_number=Subquery(
            versions.filter(state=JourneyVersion.State.PUBLISHED).values("number")[:1]
        ),
        draft_number=Subquery(
            versions.filter(state=JourneyVersion.State.DRAFT).values("number")[:1]
        ),
        open_enrollments=Coalesce(Subquery(open_count, output_field=IntegerField()), Value(0)),
        conversions=Coalesce(Subquery(conversions, output_field=IntegerField()), Value(0)),
    ).order_by("name")


def journey_versions(*, tenant: Tenant | None = None, journey: Journey) -> QuerySet[JourneyVersion]:
    _own(tenant, journey)
    return JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey).order_by(
        "-number"
    )


def journey_draft(*, tenant: Tenant | None = None, journey: Journey) -> JourneyVersion | None:
    _own(tenant, journey)
    return journey_versions(journey=journey).filter(state=JourneyVersion.State.DRAFT).first()


def journey_published(*, tenant: Tenant | None = None, journey: Journey) -> JourneyVersion | None:
    _own(tenant, journey)
    return journey_versions(journey=journey).filter(state=JourneyVersion.State.PUBLISHED).first()


def journey_current(*, tenant: Tenant | None = None, journey: Journey) -> JourneyVersion | None:
    """The version the editor shows: the draft, else the published one, else the newest."""
    _own(tenant, journey)
    versions = list(
        journey_versions(journey=journey).exclude(state=JourneyVersion.State.ARCHIVED)[:2]
    )
    for state in (JourneyVersion.State.DRAFT, JourneyVersion.State.PUBLISHED):
        for v in versions:
            if v.state == state:
                return v
    return journey_versions(journey=journey).first()


def version_graph(*, tenant: Tenant | None = None, version: JourneyVersion) -> graph_rules.Graph:
    if tenant is not None and tenant.pk != version.tenant_id:
        raise Http404("No such journey")
    nodes = Node.objects.filter(tenant_id=version.tenant_id, version=version).order_by("id")
    edges = Edge.objects.filter(tenant_id=version.tenant_id, version=version).order_by("id")
    return graph_rules.Graph(
        nodes=[
            graph_rules.GraphNode(
                key=n.key, kind=n.kind, settings=n.settings, label=n.label, x=n.x, y=n.y
            )
            for n in nodes
        ],
        edges=[graph_rules.GraphEdge(e.source, e.port, e.target) for e in edges],
    )


def journey_problems(
    *, tenant: Tenant | None = None, journey: Journey
) -> list[graph_rules.Problem]:
    """What would stop the draft (or, without one, the current version) from publishing."""
    _own(tenant, journey)
    version = journey_current(journey=journey)
    if version is None:
        return [graph_rules.Problem("", "", "The journey has no steps.")]
    graph = version_graph(version=version)
    return graph_rules.validate(graph) + reference_problems(
        tenant_id=journey.tenant_id, graph=graph
    )


REFERENCE_TYPES = {"template_email": "email", "template_push": "push", "segment": ""}


def reference_problems(*, tenant_id: int, graph: graph_rules.Graph) -> list[graph_rules.Problem]:
    """Steps whose settings name a template or a segment the team does not have (deleted, or an
    email template where a push is wanted): the graph rules cannot know; publishing refuses
    rather than fail every person at that step. Two queries at most."""
    wanted: list[tuple[str, str, str, UUID | None]] = []  # (node key, field, channel or "", id)
    for node in graph.nodes:
        if not node_kinds.is_registered(node.kind):
            continue  # validate() says so already
        for f in node_kinds.get(node.kind).fields:
            value = node.settings.get(f.key)
            if f.type in REFERENCE_TYPES and value:
                wanted.append((node.key, f.key, REFERENCE_TYPES[f.type], _uuid(value)))
    template_ids = [u for _, _, channel, u in wanted if channel and u is not None]
    segment_ids = [u for _, _, channel, u in wanted if not channel and u is not None]
    templates: dict[UUID, str] = {}
    if template_ids:
        rows = Template.objects.filter(tenant_id=tenant_id, public_id__in=template_ids)
        templates = dict(rows.values_list("public_id", "channel"))
    segments: set[UUID] = set()
    if segment_ids:
        rows_s = Segment.objects.filter(tenant_id=tenant_id, public_id__in=segment_ids)
        segments = set(rows_s.values_list("public_id", flat=True))
    problems = []
    for key, field_key, channel, found in wanted:
        if channel and (found is None or templates.get(found) != channel):
            what = "email" if channel == "email" else "web push"
            message = f"Choose one of your {what} templates: this one no longer exists."
            problems.append(graph_rules.Problem(key, field_key, message))
        elif not channel and found not in segments:
            message = "Choose one of your segments: this one no longer exists."
            problems.append(graph_rules.Problem(key, field_key, message))
    return problems


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _versions_of(journey: Journey, version: JourneyVersion | None) -> QuerySet[JourneyVersion]:
    if version is not None:
        return JourneyVersion.objects.filter(tenant_id=journey.tenant_id, pk=version.pk)
    return JourneyVersion.objects.filter(tenant_id=journey.tenant_id, journey=journey)


def node_stats(
    *, tenant: Tenant | None = None, journey: Journey, version: JourneyVersion | None = None
) -> dict[str, NodeStats]:
    """Counts per node key (see the module's docstring), across every version of `journey`, or
    only `version`'s. Keys with nothing to count are absent: `stats.get(key, EMPTY_STATS)`.
    Two queries, whatever the size of the journey."""
    _own(tenant, journey)
    versions = _versions_of(journey, version).values("pk")
    tenant_id = journey.tenant_id
    by_step = (
        Step.objects.filter(tenant_id=tenant_id, version__in=versions)
        .order_by()
        .values("node_key")
        .annotate(
            entered=Count("enrollment", distinct=True),
            completed=Count("enrollment", distinct=True, filter=Q(result__in=COMPLETED_RESULTS)),
            converted=Count("enrollment", distinct=True, filter=Q(result=Step.Result.CONVERTED)),
        )
    )
    by_state = (
        Enrollment.objects.filter(
            tenant_id=tenant_id,
            version__in=versions,
            state__in=(*OPEN_STATES, Enrollment.State.FAILED),
        )
        .order_by()
        .values("node_key")
        .annotate(
            waiting=Count("pk", filter=Q(state__in=OPEN_STATES)),
            failed=Count("pk", filter=Q(state=Enrollment.State.FAILED)),
        )
    )
    counts: dict[str, dict[str, int]] = {}
    for row in by_step:
        counts.setdefault(row["node_key"], {}).update(
            entered=row["entered"], completed=row["completed"], converted=row["converted"]
        )
    for state_row in by_state:
        counts.setdefault(state_row["node_key"], {}).update(
            waiting=state_row["waiting"], failed=state_row["failed"]
        )
    return {key: NodeStats(**values) for key, values in counts.items()}


def journey_totals(*, tenant: Tenant | None = None, journey: Journey) -> dict[str, Any]:
    """{"enrolled": enrollments ever, "open": active or waiting now, "conversions": enrollments
    that converted (state converted, or converted_at set when the journey went on), "revenue":
    their revenue (Decimal, 0 when none)}: one query."""
    _own(tenant, journey)
    totals = Enrollment.objects.filter(tenant_id=journey.tenant_id, journey=journey).aggregate(
        enrolled=Count("pk"),
        open=Count("pk", filter=Q(state__in=OPEN_STATES)),
        conversions=Count("pk", filter=CONVERTED),
        revenue=Sum("revenue", filter=CONVERTED),
    )
    totals["revenue"] = totals["revenue"] or Decimal("0.00")
    return totals


@dataclass(frozen=True)
class JourneyStats:
    nodes: dict[str, NodeStats]
    totals: dict[str, Any]  # journey_totals


def journey_stats(*, tenant: Tenant | None = None, journey: Journey) -> JourneyStats:
    """node_stats over every version, and journey_totals: three queries."""
    _own(tenant, journey)
    return JourneyStats(nodes=node_stats(journey=journey), totals=journey_totals(journey=journey))


def journey_enrollments(
    *, tenant: Tenant, journey: Journey, state: str | None = None, node_key: str = ""
) -> QuerySet[Enrollment]:
    """The journey's enrollments, newest first, with contact and version; `state` an
    Enrollment.State value or "open" (active or waiting); `node_key`: standing at that node."""
    _own(tenant, journey)
    enrollments = Enrollment.objects.filter(tenant=tenant, journey=journey)
    if node_key:
        enrollments = enrollments.filter(node_key=node_key)
    if state == "open":
        enrollments = enrollments.filter(state__in=OPEN_STATES)
    elif state:
        enrollments = enrollments.filter(state=state)
    return enrollments.select_related("contact", "version").order_by("-entered_at", "-pk")


def node_enrollments(
    *, tenant: Tenant, journey: Journey, node_key: str, state: str | None = None
) -> QuerySet[Enrollment]:
    """The people behind one of a node's counts (`state`: one of NodeStats' names; None:
    everyone who reached the node), newest first, with their contact."""
    _own(tenant, journey)
    if state not in (None, *STATS):
        raise ValueError(f"unknown node count {state!r}")
    enrollments = Enrollment.objects.filter(tenant=tenant, journey=journey)
    steps = Step.objects.filter(tenant=tenant, enrollment__journey=journey, node_key=node_key)
    if state == "waiting":
        enrollments = enrollments.filter(node_key=node_key, state__in=OPEN_STATES)
    elif state == "failed":
        enrollments = enrollments.filter(node_key=node_key, state=Enrollment.State.FAILED)
    elif state == "completed":
        enrollments = enrollments.filter(
            pk__in=steps.filter(result__in=COMPLETED_RESULTS).values("enrollment")
        )
    elif state == "converted":
        enrollments = enrollments.filter(
            pk__in=steps.filter(result=Step.Result.CONVERTED).values("enrollment")
        )
    else:
        enrollments = enrollments.filter(
            Q(pk__in=steps.values("enrollment")) | Q(node_key=node_key, state__in=OPEN_STATES)
        )
    return enrollments.select_related("contact", "version").order_by("-entered_at", "-pk")


def enrollment_steps(*, enrollment: Enrollment) -> QuerySet[Step]:
    return (
        Step.objects.filter(tenant_id=enrollment.tenant_id, enrollment=enrollment)
        .select_related("version")
        .order_by("created_at", "pk")
    )


def template_users(*, tenant: Tenant, template: Template) -> list[str]:
    """The journeys whose steps send `template` (messaging.registry): any version of a journey
    not archived, since people may still be travelling an older version of a live one."""
    nodes = (
        Node.objects.filter(tenant=tenant, settings__template=str(template.public_id))
        .exclude(version__journey__status=Journey.Status.ARCHIVED)
        .values_list("version__journey__name", "label", "key")
        .distinct()
    )
    return [f"journey “{name}” (step “{label or key}”)" for name, label, key in nodes]


def segment_users(*, tenant: Tenant, segment: Segment) -> list[str]:
    """The journeys whose steps name `segment` (segments.registry): a segment setting (the
    segment trigger) or rules with a condition on it (the condition branch), in any version of a
    journey not archived, as for templates. One query."""
    public_id = str(segment.public_id)
    wanted = Q(pk__in=[])
    fields: dict[str, list[tuple[str, str]]] = {}  # node kind -> its (field key, type)
    for kind in node_kinds.kinds():
        for f in kind.fields:
            if f.type == "segment":
                wanted |= Q(kind=kind.key, **{f"settings__{f.key}": public_id})
            elif f.type == "rules":  # narrowed by the id's text here, confirmed below
                wanted |= Q(kind=kind.key, **{f"settings__{f.key}__icontains": public_id})
            else:
                continue
            fields.setdefault(kind.key, []).append((f.key, f.type))

    def names_it(kind: str, settings: dict[str, Any]) -> bool:
        return any(
            str(settings.get(key)) == public_id
            if type_ == "segment"
            else public_id in _rule_references(settings.get(key))
            for key, type_ in fields.get(kind, ())
        )

    nodes = (
        Node.objects.filter(wanted, tenant=tenant)
        .exclude(version__journey__status=Journey.Status.ARCHIVED)
        .values_list("version__journey__name", "label", "key", "kind", "settings")
    )
    return sorted(
        {
            f"journey “{name}” (step “{label or key}”)"
            for name, label, key, kind, settings in nodes
            if isinstance(settings, dict) and names_it(kind, settings)
        }
    )


def _rule_references(tree: object) -> set[str]:
    """Public ids of the segments a (validated) rule tree's conditions refer to."""
    from segments import registry

    if not isinstance(tree, dict):
        return set()
    if tree.get("type") == "group":
        return {ref for child in tree.get("children") or [] for ref in _rule_references(child)}
    try:
        return registry.get(tree.get("type")).references(tree)
    except KeyError:
        return set()
