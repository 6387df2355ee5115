"""REST API for campaigns (secret key; see docs/api.md): CRUD with segments and templates by id,
scheduling, pause / resume / cancel, duplicating, the live audience estimate, occurrences, and
each occurrence's progress and results.

Every view loads the campaign through the gatekeeper (`selectors.campaign_get`: another team's
id is a 404, like an unknown one) and calls the services the pages and the admin call. Segments
and templates named in a body are looked up in the key's team only: another team's id is a 400
("No such segment."), never a hint that it exists. A service's refusal that names fields is a
400 with them; one that does not (the campaign's state forbids it: editing a sending campaign,
pausing a draft, deleting one that is sending) is a 409 with its message.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.models import Campaign, Occurrence
from campaigns.serializers import (
    CampaignAudienceInputSerializer,
    CampaignAudienceOutputSerializer,
    CampaignInputSerializer,
    CampaignOccurrenceOutputSerializer,
    CampaignOutputSerializer,
    CampaignStatsOutputSerializer,
)
from campaigns.services import EDITABLE_FIELDS
from core.openapi import API_ERROR
from core.pagination import NewestFirstPagination
from messaging.models import Template
from segments.models import Segment
from tenants.api import TenantAPIView
from tenants.models import Tenant

CAMPAIGN_ID = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the campaign's id"
)
PREFETCH = ("segments__segment", "variants__template")


class Conflict(exceptions.APIException):
    """The campaign's state does not allow this: 409 with a message saying why."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The campaign's state does not allow this."


def _refuse(exc: ValidationError) -> NoReturn:
    """A service's refusal: 409 when the campaign's state forbids it (code "state"), else a
    400 naming its fields (`non_field_errors` for the campaign as a whole)."""
    if not hasattr(exc, "error_dict"):
        if any(error.code == "state" for error in exc.error_list):
            raise Conflict(" ".join(exc.messages)) from None
        raise serializers.ValidationError({"non_field_errors": exc.messages}) from None
    raise serializers.ValidationError(
        {
            ("non_field_errors" if k == NON_FIELD_ERRORS else k): v
            for k, v in exc.message_dict.items()
        }
    ) from None


def _segments(tenant: Tenant, ids: list[Any], field: str, errors: dict[str, Any]) -> list[Segment]:
    found = {s.public_id: s for s in Segment.objects.filter(tenant=tenant, public_id__in=ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        errors[field] = [f"No such segment: {i}." for i in missing]
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def _fields(tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    """The service's keyword arguments from a validated body: segments and templates resolved
    in the key's team (another team's id reads as no such one)."""
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    errors: dict[str, Any] = {}
    for name in ("segments", "exclude_segments"):
        if name in data:
            fields[name] = _segments(tenant, data[name], name, errors)
    if "variants" in data:
        wanted = [v["template"] for v in data["variants"]]
        found = {
            t.public_id: t for t in Template.objects.filter(tenant=tenant, public_id__in=wanted)
        }
        per_variant = [
            {} if v["template"] in found else {"template": ["No such template."]}
            for v in data["variants"]
        ]
        if any(per_variant):
            errors["variants"] = per_variant
        fields["variants"] = [
            (found[v["template"]], v["weight"]) for v in data["variants"] if v["template"] in found
        ]
    if errors:
        raise serializers.ValidationError(errors)
    return fields


class CampaignAPIView(TenantAPIView):
    """Campaigns of the key's team."""

    def campaign(self, public_id: str) -> Campaign:
        return selectors.campaign_get(tenant=self.tenant, public_id=public_id)

    def campaign_response(self, campaign: Campaign, *, status_code: int = 200) -> Response:
        campaign = self.campaign(str(campaign.public_id))  # as stored, with its rows fresh
        prefetch_related_objects([campaign], *PREFETCH)
        return Response(CampaignOutputSerializer(campaign).data, status=status_code)


class CampaignListAPI(CampaignAPIView):
    pagination_class = NewestFirstPagination

    @extend_schema(
        summary="List campaigns, newest first",
        parameters=[
            # No `enum`: it would be a component named like other apps' `state` enums.
            OpenApiParameter(
                "state",
                str,
                description="Only campaigns in this state: draft, scheduled, sending, paused, "
                "sent or cancelled.",
            )
        ],
        responses=CampaignOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("state", "")
        if wanted and wanted not in Campaign.State.values:
            raise serializers.ValidationError(
                {"state": [f"One of {', '.join(Campaign.State.values)}."]}
            )
        campaigns = selectors.campaign_list(tenant=self.tenant, state=wanted).prefetch_related(
            *PREFETCH
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(campaigns, request, view=self)
        return paginator.get_paginated_response(CampaignOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a campaign (a draft)",
        description="Schedule it with `POST …/schedule/` once it has its audience, a variant "
        "and its time.",
        request=CampaignInputSerializer,
        responses={201: CampaignOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = CampaignInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = _fields(self.tenant, payload.validated_data)
        try:
            campaign = services.campaign_create(tenant=self.tenant, **fields)
        except ValidationError as exc:
            _refuse(exc)
        return self.campaign_response(campaign, status_code=status.HTTP_201_CREATED)


class CampaignDetailAPI(CampaignAPIView):
    @extend_schema(
        summary="A campaign with its segments and variants",
        parameters=[CAMPAIGN_ID],
        responses=CampaignOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        return self.campaign_response(self.campaign(public_id))

    @extend_schema(
        summary="Change a draft or scheduled campaign",
        description="Any of the fields; `segments`, `exclude_segments` and `variants` replace "
        "the lists. 409 once it is sending, paused, sent or cancelled.",
        parameters=[CAMPAIGN_ID],
        request=CampaignInputSerializer,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def patch(self, request: Request, public_id: str) -> Response:
        campaign = self.campaign(public_id)
        if not campaign.editable:
            raise Conflict(
                f"A {campaign.get_state_display().lower()} campaign can't be changed: "
                "only drafts and scheduled campaigns can."
            )
        payload = CampaignInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        fields = _fields(self.tenant, payload.validated_data)
        try:
            campaign = services.campaign_update(campaign=campaign, **fields)
        except ValidationError as exc:
            _refuse(exc)
        return self.campaign_response(campaign)

    @extend_schema(
        summary="Delete a campaign that is not sending or paused (cancel it first)",
        parameters=[CAMPAIGN_ID],
        responses={204: None, 409: API_ERROR},
    )
    def delete(self, request: Request, public_id: str) -> Response:
        campaign = self.campaign(public_id)
        try:
            services.campaign_delete(campaign=campaign)
        except ValidationError as exc:
            _refuse(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _transition(view: CampaignAPIView, verb: str, public_id: str) -> Response:
    """Move the campaign's state through its service (`campaign_<verb>`)."""
    service = getattr(services, f"campaign_{verb}")
    try:
        campaign = service(campaign=view.campaign(public_id))
    except ValidationError as exc:
        _refuse(exc)
    return view.campaign_response(campaign)


class CampaignScheduleAPI(CampaignAPIView):
    @extend_schema(
        summary="Schedule a draft: now, at its time, at each recipient's local time, or recurring",
        description=(
            "Checks that it is ready (a segment, a variant, a complete schedule in the "
            "future); what is missing is a 400 naming the field. `now` "
            "starts sending at once. 409 unless it is a draft or scheduled (scheduling again "
            "checks it again)."
        ),
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        return _transition(self, "schedule", public_id)


class CampaignUnscheduleAPI(CampaignAPIView):
    @extend_schema(
        summary="Take a scheduled campaign back to draft",
        description="A recurring campaign stops firing. 409 unless it is scheduled.",
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        return _transition(self, "unschedule", public_id)


class CampaignPauseAPI(CampaignAPIView):
    @extend_schema(
        summary="Pause a sending campaign: no more messages go out until it is resumed",
        description=(
            "Resuming carries on with the first recipient not released yet, so no one gets it "
            "twice or is skipped. 409 unless it is sending."
        ),
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        return _transition(self, "pause", public_id)


class CampaignResumeAPI(CampaignAPIView):
    @extend_schema(
        summary="Resume a paused campaign where it stopped",
        description="409 unless it is paused.",
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        return _transition(self, "resume", public_id)


class CampaignCancelAPI(CampaignAPIView):
    @extend_schema(
        summary="Cancel a campaign for good: recipients not sent to yet get nothing",
        description="Its messages still queued are skipped and a recurring campaign stops. "
        "409 unless it is scheduled, sending or paused (delete a draft instead).",
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: CampaignOutputSerializer, 409: API_ERROR},
    )
    def post(self, request: Request, public_id: str) -> Response:
        return _transition(self, "cancel", public_id)


class CampaignDuplicateAPI(CampaignAPIView):
    @extend_schema(
        summary="Copy a campaign as a new draft, “<name> (copy)”",
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={201: CampaignOutputSerializer},
    )
    def post(self, request: Request, public_id: str) -> Response:
        try:
            copy = services.campaign_duplicate(campaign=self.campaign(public_id))
        except ValidationError as exc:
            _refuse(exc)
        return self.campaign_response(copy, status_code=status.HTTP_201_CREATED)


class CampaignAudienceAPI(CampaignAPIView):
    @extend_schema(
        summary="How many the campaign would reach now (after exclusions, consent, suppression)",
        parameters=[CAMPAIGN_ID],
        responses=CampaignAudienceOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        estimate = selectors.campaign_audience_estimate(campaign=self.campaign(public_id))
        return Response(CampaignAudienceOutputSerializer(estimate).data)


class CampaignAudienceEstimateAPI(CampaignAPIView):
    @extend_schema(
        summary="How many a campaign to these segments would reach now, without saving one",
        request=CampaignAudienceInputSerializer,
        responses=CampaignAudienceOutputSerializer,
    )
    def post(self, request: Request) -> Response:
        payload = CampaignAudienceInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        errors: dict[str, Any] = {}
        segments = _segments(self.tenant, data["segments"], "segments", errors)
        exclude = _segments(self.tenant, data["exclude_segments"], "exclude_segments", errors)
        if errors:
            raise serializers.ValidationError(errors)
        estimate = selectors.audience_estimate(
            tenant=self.tenant,
            channel=data["channel"],
            category=data["category"],
            segments=segments,
            exclude_segments=exclude,
        )
        return Response(CampaignAudienceOutputSerializer(estimate).data)


class OccurrencePagination(NewestFirstPagination):
    ordering = "-started_at"


class CampaignOccurrencesAPI(CampaignAPIView):
    pagination_class = OccurrencePagination

    @extend_schema(
        summary="The campaign's sendings, newest first (one for a one-off campaign)",
        parameters=[CAMPAIGN_ID],
        responses=CampaignOccurrenceOutputSerializer(many=True),
    )
    def get(self, request: Request, public_id: str) -> Response:
        campaign = self.campaign(public_id)
        occurrences = Occurrence.objects.filter(
            tenant=self.tenant, campaign=campaign
        ).select_related("winner")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(occurrences, request, view=self)
        return paginator.get_paginated_response(
            CampaignOccurrenceOutputSerializer(page, many=True).data
        )


class CampaignStatsAPI(CampaignAPIView):
    @extend_schema(
        summary="Progress and results of the latest occurrence (or `?occurrence=`)",
        description="Per variant and for the hold-out: recipients, delivered, opens and clicks "
        "(unique contacts), clicks per link, unsubscribes, bounces, conversions and revenue in "
        "the goal window, their rates and the lift over the hold-out; and the sending's "
        "progress. Before the first occurrence, `occurrence` and `progress` are null. Once "
        "final (the goal window after the sending ended has passed), or before data retention "
        "removes the events they are counted from, the results are kept and read from there: "
        "`results_frozen_at` says since when.",
        parameters=[
            CAMPAIGN_ID,
            OpenApiParameter("occurrence", OpenApiTypes.UUID, description="an occurrence's id"),
        ],
        responses=CampaignStatsOutputSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        campaign = self.campaign(public_id)
        wanted = request.query_params.get("occurrence", "")
        occurrence: Occurrence | None
        if wanted:
            occurrence = selectors.occurrence_get(campaign=campaign, public_id=wanted)
        else:
            occurrence = selectors.occurrence_latest(campaign=campaign)
        progress = results = None
        if occurrence is not None:
            progress = selectors.occurrence_progress(occurrence=occurrence)
            results = selectors.campaign_results(campaign=campaign, occurrence=occurrence)
        body = {
            "occurrence": occurrence,
            "progress": progress,
            "variants": results.variants if results else [],
            "holdout": results.holdout if results else None,
            "total": results.total if results else None,
            "waiting_for_winner": results.waiting if results else 0,
            "series": results.series if results else None,
            # Kept results carry the goal they were counted with.
            "goal_event": results.goal_event if results else campaign.goal_event,
            "goal_window_hours": results.goal_window_hours
            if results
            else campaign.goal_window_hours,
            "results_frozen_at": results.frozen_at if results else None,
            "results_final": bool(results and results.final),
        }
        return Response(CampaignStatsOutputSerializer(body).data)
