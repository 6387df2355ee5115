"""Reads for onsite placements, with the gatekeepers (another team's placement or variant is a
404, like an unknown one) and the figures of the marketer's list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, QuerySet
from django.db.models.fields.json import KT
from django.http import Http404
from django.utils.timezone import now

from audience.models import Event
from core.ids import uuid_or_404
from personalisation.placements.models import CLICKED, VIEWED, Placement, PlacementVariant
from segments.models import Segment
from tenants.models import Tenant

STATS_DAYS = 30


def placement_list(*, tenant: Tenant) -> QuerySet[Placement]:
    return Placement.objects.filter(tenant=tenant).order_by("key", "pk")


def placement_get(*, tenant: Tenant, public_id: object) -> Placement:
    found = Placement.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="placement")
    ).first()
    if found is None:
        raise Http404("No such placement")
    return found


def variant_list(*, tenant: Tenant, placement: Placement) -> QuerySet[PlacementVariant]:
    """The placement's variants in priority order, inactive ones included."""
    return (
        PlacementVariant.objects.filter(tenant=tenant, placement=placement)
        .select_related("segment")
        .order_by("position", "id")
    )


def variant_get(*, tenant: Tenant, placement: Placement, public_id: object) -> PlacementVariant:
    found = (
        PlacementVariant.objects.filter(
            tenant=tenant,
            placement=placement,
            public_id=uuid_or_404(public_id, what="variant"),
        )
        .select_related("segment", "placement")
        .first()
    )
    if found is None:
        raise Http404("No such variant")
    return found


def active_variants(*, tenant: Tenant, keys: Sequence[str]) -> list[PlacementVariant]:
    """The active variants of the placements named by `keys`, in priority order per placement:
    what a visitor may be served."""
    return list(
        PlacementVariant.objects.filter(tenant=tenant, placement__key__in=keys, active=True)
        .select_related("placement")
        .order_by("placement_id", "position", "id")
    )


def segment_users(*, tenant: Tenant, segment: Segment) -> list[str]:
    """segments.registry's finder: the placements whose variants target `segment`."""
    variants = (
        PlacementVariant.objects.filter(tenant=tenant, segment=segment)
        .select_related("placement")
        .order_by("placement__key", "position")
    )
    return [f"placement “{v.placement.name}” (variant “{v.name}”)" for v in variants]


@dataclass
class VariantFigures:
    views: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float | None:
        """Clicks per view, as a percentage; None without a view."""
        return 100 * self.clicks / self.views if self.views else None


def placement_figures(
    *, tenant: Tenant, placements: list[Placement], days: int = STATS_DAYS
) -> dict[tuple[str, str], VariantFigures]:
    """{(placement key, variant public id): views and clicks} over the last `days`, counted from
    the tracker's `Placement Viewed` / `Placement Clicked` events. One grouped read over the
    events' (tenant, name, occurred_at) index, bounded by time (so only recent monthly partitions
    are read)."""
    if not placements:
        return {}
    rows = (
        Event.objects.filter(
            tenant=tenant,
            name__in=[VIEWED, CLICKED],
            occurred_at__gte=now() - timedelta(days=days),
        )
        # A key transform's `__in` (not KT's: SQLite would parse the keys as JSON).
        .filter(properties__placement__in=[p.key for p in placements])
        .annotate(placement_key=KT("properties__placement"), variant=KT("properties__variant"))
        .values("name", "placement_key", "variant")
        .annotate(n=Count("id"))
        .order_by()
    )
    figures: dict[tuple[str, str], VariantFigures] = {}
    for row in rows:
        found = figures.setdefault((row["placement_key"], row["variant"] or ""), VariantFigures())
        if row["name"] == VIEWED:
            found.views += row["n"]
        else:
            found.clicks += row["n"]
    return figures
