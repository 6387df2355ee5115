"""REST API for journeys (secret key; see docs/api.md): CRUD with the graph as JSON, publishing,
pause / resume / archive, per-node counts, enrollments, ready-made journeys and the API trigger.

Every view loads the journey through the gatekeeper (`selectors.journey_get`: another team's id
is a 404, like an unknown one) and calls the services the editor and the admin call. A service's
refusal that names fields is a 400 with them; one that does not (the journey's state forbids it:
publishing an archived journey, pausing a draft, deleting a published one, enrolling into a
journey that is not live or not API-triggered) is a 409 with its message.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audience import selectors as audience_selectors
from audience.models import Contact
from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from journeys import graph as graph_rules
from journeys import presets, selectors, services
from journeys.models import Enrollment, Journey, JourneyVersion
from journeys.serializers import (
    SETTINGS_FIELDS,
    EnrollInputSerializer,
    EnrollmentOutputSerializer,
    EnrollOutputSerializer,
    GraphSerializer,
    JourneyInputSerializer,
    JourneyListOutputSerializer,
    JourneyOutputSerializer,
    JourneyPatchSerializer,
    JourneyPresetListOutputSerializer,
    JourneyPresetOutputSerializer,
    ProblemsOutputSerializer,
    PublishInputSerializer,
    StatsOutputSerializer,
    VersionOutputSerializer,
)
from journeys.services import JourneyConflict, JourneyError, JourneyGraphInvalid
from tenants.api import TenantAPIView

JOURNEY_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the journey's id"
)
ENROLLMENT_ID = OpenApiParameter(
    "enrollment_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the enrollment's id"
)


class Conflict(exceptions.APIException):
    """The journey's state does not allow this: 409 with a message saying why."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The journey's state does not allow this."


def _refuse(exc: JourneyError, *, under: str = "") -> NoReturn:
    """A service's refusal: 409 when the journey's state forbids it (JourneyConflict), else a
    400 naming its fields (under `under`, such as "graph", for a nested body part)."""
    if isinstance(exc, JourneyConflict):
        raise Conflict(exc.message) from None
    fields: dict[str, Any] = {name: [message] for name, message in exc.fields.items()}
    if not fields:
        raise serializers.ValidationError({"non_field_errors": [exc.message]}) from None
    raise serializers.ValidationError({under: fields} if under else fields) from None


def _graph_json(version: JourneyVersion) -> dict[str, Any]:
    graph = selectors.version_graph(tenant=version.tenant, version=version)
    return graph_rules.graph_to_json(graph)


class JourneyAPIView(TenantAPIView):
    """Journeys of the key's team."""

    def journey(self, public_id: str) -> Journey:
        return selectors.journey_get(tenant=self.tenant, public_id=public_id)

    def journey_response(self, journey: Journey, *, status_code: int = 200) -> Response:
        draft = selectors.journey_draft(tenant=self.tenant, journey=journey)
        published = selectors.journey_published(tenant=self.tenant, journey=journey)
        versions = [v for v in (draft, published) if v is not None]
        context = {
            "draft": draft,
            "published": published,
            "graphs": {v.pk: _graph_json(v) for v in versions},
        }
        return Response(JourneyOutputSerializer(journey, context=context).data, status=status_code)


class JourneyListAPI(JourneyAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List journeys, newest first",
        parameters=[
            # No `enum`: it would be a component named like messaging's `status` enum.
            OpenApiParameter(
                "status",
                str,
                description="Only journeys in this state: draft, live, paused or archived "
                "(archived ones are listed only so).",
            )
        ],
        responses=JourneyListOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status", "")
        if wanted and wanted not in Journey.Status.values:
            raise serializers.ValidationError(
                {"status": [f"One of {', '.join(Journey.Status.values)}."]}
            )
        journeys = selectors.journey_list(tenant=self.tenant, status=wanted)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(journeys, request, view=self)
        return paginator.get_paginated_response(JourneyListOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a journey (a draft) with its settings and graph",
        request=JourneyInputSerializer,
        responses={201: JourneyOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = JourneyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            journey = services.journey_create(
                tenant=self.tenant,
                name=data["name"],
                description=data["description"],
                settings=data.get("settings"),
                graph=data.get("graph"),
            )
        except JourneyError as exc:
            _refuse(exc, under="" if "name" in exc.fields else "graph")
        return self.journey_response(journey, status_code=status.HTTP_201_CREATED)


class JourneyDetailAPI(JourneyAPIView):
    @extend_schema(
        summary="A journey with its draft and published versions (settings and graph)",
        parameters=[JOURNEY_ID],
        responses=JourneyOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        return self.journey_response(self.journey(public_id))

    @extend_schema(
        summary="Change a journey's name, description or settings (settings go to the draft)",
        parameters=[JOURNEY_ID],
        request=JourneyPatchSerializer,
        responses=JourneyOutputSerializer,
    )
    def patch(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        payload = JourneyPatchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        identity = {k: data[k] for k in ("name", "description") if k in data}
        settings = {k: v for k, v in data.get("settings", {}).items() if k in SETTINGS_FIELDS}
        try:
            with transaction.atomic():  # all of it or none
                if identity:
                    journey = services.journey_update(
                        tenant=self.tenant, journey=journey, **identity
                    )
                if settings:
                    services.journey_settings_update(
                        tenant=self.tenant, journey=journey, **settings
                    )
        except JourneyError as exc:
            _refuse(exc, under="" if "name" in exc.fields else "settings")
        return self.journey_response(journey)

    @extend_schema(
        summary="Delete a journey that was never published (archive the others)",
        parameters=[JOURNEY_ID],
        responses={204: None, 409: API_ERROR},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        try:
            services.journey_delete(tenant=self.tenant, journey=journey)
        except JourneyError as exc:
            _refuse(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JourneyGraphAPI(JourneyAPIView):
    @extend_schema(
        summary="Replace the draft's graph (nodes and edges); publish to make it live",
        description="The body is the graph JSON. What cannot be stored (a key used twice, two "
        "edges on one port, a wrong type) is a 400 naming its path (`nodes[2].key`); the "
        "publishing rules are checked when publishing.",
        parameters=[JOURNEY_ID],
        request=GraphSerializer,
        responses={200: JourneyOutputSerializer, 409: API_ERROR},
    )
    def put(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        if journey.status == Journey.Status.ARCHIVED:
            raise Conflict("An archived journey can't be changed.")
        if not isinstance(request.data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["The graph must be an object with “nodes” and “edges”."]}
            )
        try:
            services.graph_replace(tenant=self.tenant, journey=journey, graph=request.data)
        except JourneyError as exc:
            _refuse(exc)
        return self.journey_response(journey)


class JourneyPublishAPI(JourneyAPIView):
    @extend_schema(
        summary="Publish the draft as the live version",
        description="A graph that breaks a rule is refused with 400, code `invalid_graph`, and "
        "its `problems`, each naming the node (its key) and the setting at fault. Nothing to "
        "publish, or an archived journey, is a 409.",
        parameters=[JOURNEY_ID],
        request=PublishInputSerializer,
        responses={200: VersionOutputSerializer, 400: ProblemsOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        payload = PublishInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            version = services.journey_publish(
                tenant=self.tenant,
                journey=journey,
                move_waiting=payload.validated_data["move_waiting"],
            )
        except JourneyGraphInvalid as exc:
            return _problems(exc)
        except JourneyError as exc:
            _refuse(exc)
        context = {"graphs": {version.pk: _graph_json(version)}}
        return Response(VersionOutputSerializer(version, context=context).data)


def _problems(exc: JourneyGraphInvalid) -> Response:
    body = {
        "error": {"code": "invalid_graph", "message": exc.message},
        "problems": [
            {"node": p.node_key, "field": p.field, "message": p.message} for p in exc.problems
        ],
    }
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class JourneyPauseAPI(JourneyAPIView):
    @extend_schema(
        summary="Pause a live journey: no one enters, enrollments hold where they are",
        parameters=[JOURNEY_ID],
        request=None,
        responses={200: JourneyOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        try:
            journey = services.journey_pause(tenant=self.tenant, journey=self.journey(public_id))
        except JourneyError as exc:
            _refuse(exc)
        return self.journey_response(journey)


class JourneyResumeAPI(JourneyAPIView):
    @extend_schema(
        summary="Resume a paused journey where its enrollments were",
        parameters=[JOURNEY_ID],
        request=None,
        responses={200: JourneyOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        try:
            journey = services.journey_resume(tenant=self.tenant, journey=self.journey(public_id))
        except JourneyError as exc:
            _refuse(exc)
        return self.journey_response(journey)


class JourneyArchiveAPI(JourneyAPIView):
    @extend_schema(
        summary="Archive a journey for good: everyone in it exits",
        parameters=[JOURNEY_ID],
        request=None,
        responses={200: JourneyOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        try:
            journey = services.journey_archive(tenant=self.tenant, journey=self.journey(public_id))
        except JourneyError as exc:
            _refuse(exc)
        return self.journey_response(journey)


class JourneyStatsAPI(JourneyAPIView):
    @extend_schema(
        summary="Per-node counts (entered, waiting, completed, converted, failed) and totals",
        parameters=[JOURNEY_ID],
        responses=StatsOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        stats = selectors.journey_stats(tenant=self.tenant, journey=journey)
        return Response(StatsOutputSerializer(stats).data)


class EnrollmentPagination(NewestFirstPagination):
    ordering = "-entered_at"


NODE_STATES = ("entered", "waiting", "completed", "converted", "failed")


class JourneyEnrollmentsAPI(JourneyAPIView):
    pagination_class = EnrollmentPagination

    @extend_schema(
        summary="The journey's enrollments, newest first; by node and state",
        description="With `node`, the people behind that node's counts: `state` is one of "
        "the counts' names (entered, waiting, completed, converted, failed; default entered). "
        "Without, every enrollment of the journey, `state` an enrollment state or `open`.",
        parameters=[
            JOURNEY_ID,
            OpenApiParameter("node", str, description="a node's key"),
            OpenApiParameter(
                "state",
                str,
                enum=sorted({*NODE_STATES, *Enrollment.State.values, "open"}),
            ),
        ],
        responses=EnrollmentOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        node = request.query_params.get("node", "")
        state = request.query_params.get("state", "")
        allowed = NODE_STATES if node else (*Enrollment.State.values, "open")
        if state and state not in allowed:
            raise serializers.ValidationError({"state": [f"One of {', '.join(allowed)}."]})
        if node:
            enrollments = selectors.node_enrollments(
                tenant=self.tenant, journey=journey, node_key=node, state=state or None
            )
        else:
            enrollments = selectors.journey_enrollments(
                tenant=self.tenant, journey=journey, state=state or None
            )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(enrollments, request, view=self)
        return paginator.get_paginated_response(EnrollmentOutputSerializer(page, many=True).data)


class EnrollmentRetryAPI(JourneyAPIView):
    @extend_schema(
        summary="Retry a failed enrollment's step",
        parameters=[JOURNEY_ID, ENROLLMENT_ID],
        request=None,
        responses={200: EnrollmentOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str, enrollment_id: str) -> Response:
        journey = self.journey(public_id)
        enrollment = selectors.enrollment_get(
            tenant=self.tenant, journey=journey, public_id=enrollment_id
        )
        if enrollment.state != Enrollment.State.FAILED:
            raise Conflict("Only a failed enrollment can be retried.")
        try:
            services.enrollments_retry(
                tenant=self.tenant, journey=journey, enrollments=[enrollment]
            )
        except JourneyConflict as exc:
            raise Conflict(str(exc)) from None
        enrollment.refresh_from_db()
        return Response(EnrollmentOutputSerializer(enrollment).data)


def _contact(tenant: Any, ref: dict[str, Any]) -> Contact:
    """The key's team's contact, or a 400 naming the field (another team's is not found)."""
    contact: Contact | None
    if "id" in ref:
        contact = Contact.objects.filter(tenant=tenant, public_id=ref["id"]).first()
    else:
        contact = audience_selectors.contact_find(
            tenant=tenant, user_id=ref.get("user_id", ""), email=ref.get("email", "")
        )
    if contact is None:
        field = next(iter(ref))
        raise serializers.ValidationError({"contact": {field: [f"No contact has this {field}."]}})
    return contact


class JourneyEnrollAPI(JourneyAPIView):
    @extend_schema(
        summary="Enter a contact into a live journey triggered by the API, with data",
        description="201 with the enrollment. 409 when the journey is not live, its trigger "
        "is not “When enrolled through the API”, or the contact may not enter now (in it "
        "already, the re-entry rule, the journey's limit). 400 names the field: an unknown "
        "contact, or data that cannot be stored (by its path, `data.items[0].price`).",
        parameters=[JOURNEY_ID],
        request=EnrollInputSerializer,
        responses={201: EnrollOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        journey = self.journey(public_id)
        payload = EnrollInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        contact = _contact(self.tenant, data["contact"])
        try:
            enrollment = services.journey_enroll(
                tenant=self.tenant, journey=journey, contact=contact, data=data["data"]
            )
        except JourneyError as exc:
            _refuse(exc)
        return Response(EnrollOutputSerializer(enrollment).data, status=status.HTTP_201_CREATED)


class PresetListAPI(TenantAPIView):
    @extend_schema(
        summary="The ready-made journeys a team can add",
        responses=JourneyPresetListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"results": JourneyPresetOutputSerializer(presets.PRESETS.values(), many=True).data}
        )


class PresetCreateAPI(JourneyAPIView):
    @extend_schema(
        summary="Create a journey (a draft, ready to edit) from a ready-made one",
        parameters=[
            OpenApiParameter("key", str, OpenApiParameter.PATH, enum=list(presets.PRESETS))
        ],
        request=None,
        responses={201: JourneyOutputSerializer},
    )
    def post(self, request: Request, key: str) -> Response:
        if key not in presets.PRESETS:
            raise exceptions.NotFound(f"No such preset; use one of {', '.join(presets.PRESETS)}.")
        try:
            journey = presets.preset_create(tenant=self.tenant, key=key)
        except JourneyError as exc:
            _refuse(exc)
        return self.journey_response(journey, status_code=status.HTTP_201_CREATED)
