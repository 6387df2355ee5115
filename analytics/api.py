"""Analytics REST API (/api/v1/analytics/…): the figures the dashboards and the journey map show,
for a team's own reporting. Reads the rollups through analytics.selectors, like the pages; days
are the team's local days and every answer names its time zone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.metrics import BY_KEY, METRICS
from analytics.periods import MAX_DAYS
from audience.selectors import lifecycle_stage_counts
from tenants.api import TenantAPIView

DEFAULT_DAYS = 30
METRICS_HELP = "Comma-separated metric keys: " + ", ".join(m.key for m in METRICS)


class PeriodQuerySerializer(serializers.Serializer):
    """`start` and `end` (inclusive), the team's local dates; by default the last 30 days."""

    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today: date = self.context["today"]
        end = attrs.get("end") or today
        start = attrs.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": "Start must not be after end."})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"end": f"Ask for at most {MAX_DAYS} days at once."})
        return {"start": start, "end": end}


class MetricsQuerySerializer(PeriodQuerySerializer):
    metrics = serializers.CharField(help_text=METRICS_HELP)

    def validate_metrics(self, value: str) -> list[str]:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise serializers.ValidationError("Name at least one metric.")
        unknown = [k for k in keys if k not in BY_KEY]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown metric(s): {', '.join(unknown)}. Use: {', '.join(BY_KEY)}."
            )
        return list(dict.fromkeys(keys))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {**super().validate(attrs), "metrics": attrs["metrics"]}


class DayValueSerializer(serializers.Serializer):
    date = serializers.DateField()
    value = serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)


class MetricOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField(help_text="What the dashboards call it.")
    definition = serializers.CharField()
    money = serializers.BooleanField(help_text="A sum of order values, not a count.")
    total = serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)
    series = DayValueSerializer(many=True)


class MetricsOutputSerializer(serializers.Serializer):
    time_zone = serializers.CharField(help_text="The team's time zone: the days are its days.")
    start = serializers.DateField()
    end = serializers.DateField()
    metrics = MetricOutputSerializer(many=True)


class TransitionSerializer(serializers.Serializer):
    from_stage = serializers.CharField(help_text='"" for a new contact\'s first stage.')
    to_stage = serializers.CharField()
    contacts = serializers.IntegerField()


class StagesOutputSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Contacts in each lifecycle stage now."
    )
    transitions = TransitionSerializer(many=True, help_text="Moves between stages in the period.")


def _period(request: Request, serializer_class: type[serializers.Serializer], tenant: Any) -> Any:
    query = serializer_class(data=request.query_params, context={"today": selectors.today(tenant)})
    query.is_valid(raise_exception=True)
    return query.validated_data


PERIOD_PARAMETERS = [
    OpenApiParameter(
        "start", OpenApiTypes.DATE, description="first day (default: 29 days before end)"
    ),
    OpenApiParameter("end", OpenApiTypes.DATE, description="last day, inclusive (default: today)"),
]


class MetricsAPI(TenantAPIView):
    @extend_schema(
        summary="Daily metrics over a period",
        description="Each metric's value on every day of the period (0 where nothing happened) "
        "and its total, from the rollups (docs/analytics.md defines every metric). Distinct "
        "counts such as visitors are summed over days. At most 366 days per request.",
        parameters=[
            OpenApiParameter(
                "metrics",
                str,
                required=True,
                description=METRICS_HELP,
            ),
            *PERIOD_PARAMETERS,
        ],
        responses=MetricsOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = _period(request, MetricsQuerySerializer, self.tenant)
        start, end, keys = query["start"], query["end"], query["metrics"]
        series = selectors.metric_series(tenant=self.tenant, metrics=keys, start=start, end=end)
        body = {
            "time_zone": self.tenant.timezone,
            "start": start,
            "end": end,
            "metrics": [
                {
                    "key": key,
                    "name": BY_KEY[key].label,
                    "definition": BY_KEY[key].definition,
                    "money": BY_KEY[key].money,
                    "total": sum((value for _, value in series[key]), Decimal(0)),
                    "series": [{"date": day, "value": value} for day, value in series[key]],
                }
                for key in keys
            ],
        }
        return Response(MetricsOutputSerializer(body).data)


class StagesAPI(TenantAPIView):
    @extend_schema(
        summary="Lifecycle stages: contacts in each now, and moves between them over a period",
        parameters=PERIOD_PARAMETERS,
        responses=StagesOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = _period(request, PeriodQuerySerializer, self.tenant)
        start, end = query["start"], query["end"]
        moves = selectors.stage_transitions(tenant=self.tenant, start=start, end=end)
        body = {
            "time_zone": self.tenant.timezone,
            "start": start,
            "end": end,
            "counts": lifecycle_stage_counts(tenant=self.tenant),
            "transitions": [{"from_stage": a, "to_stage": b, "contacts": n} for a, b, n in moves],
        }
        return Response(StagesOutputSerializer(body).data)
