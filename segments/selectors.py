"""Reads for segments, including the gatekeeper that 404s on other tenants' segments."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from audience.models import Contact
from core.ids import uuid_or_404
from segments.compiler import segment_contacts, segment_count
from segments.models import Segment, SegmentMembership

# The rule language's words for its comparisons ("is at least"), for other apps' forms and
# summaries that offer the same comparisons (journeys' property filters).
from segments.rules import OPERATOR_WORDS as OPERATOR_WORDS
from tenants.models import Tenant


def segment_get(*, tenant: Tenant, public_id: object) -> Segment:
    key = uuid_or_404(public_id, what="segment")
    segment = Segment.objects.filter(tenant=tenant, public_id=key).first()
    if segment is None:
        raise Http404("No such segment")
    return segment


def segment_list(*, tenant: Tenant) -> QuerySet[Segment]:
    return Segment.objects.filter(tenant=tenant).order_by("name")


def segment_names(*, tenant: Tenant) -> dict[str, str]:
    """Public id → name, for summaries of rules that refer to other segments."""
    return {
        str(pk): name
        for pk, name in Segment.objects.filter(tenant=tenant).values_list("public_id", "name")
    }


def rules_count(*, tenant: Tenant, rules: dict[str, Any]) -> int:
    """How many of the tenant's contacts a validated rule tree matches right now."""
    return segment_count(tenant=tenant, rules=rules)


def rules_sample(*, tenant: Tenant, rules: dict[str, Any], size: int = 10) -> list[Contact]:
    """A few matching contacts, the most recently created first."""
    matching = segment_contacts(tenant=tenant, rules=rules)
    return list(matching.order_by("-created_at", "-pk")[:size])


def segment_members(*, tenant: Tenant, segment: Segment) -> QuerySet[Contact]:
    """The segment's current (materialised) members."""
    return Contact.objects.filter(
        tenant=tenant,
        pk__in=SegmentMembership.objects.filter(tenant=tenant, segment=segment).values(
            "contact_id"
        ),
    )


def contact_segments(*, tenant: Tenant, contact: Contact) -> QuerySet[SegmentMembership]:
    """The segments a contact is in now, with when it entered each."""
    return (
        SegmentMembership.objects.filter(tenant=tenant, contact=contact)
        .select_related("segment")
        .order_by("segment__name")
    )
