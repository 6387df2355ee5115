"""Writes for onsite placements: placements, their variants (targets, priority order, active),
and deciding which variant a visitor sees (`placements_decide`).

Every write validates the model (`full_clean`) and raises ValidationError naming the field, which
the forms and the API show as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.timezone import now

from audience.models import Contact
from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.selectors import active_variants
from segments.models import Segment, SegmentMembership
from segments.services import segment_memberships_refresh_contacts
from tenants.models import Tenant

PLACEMENT_FIELDS = ("key", "name", "description")
VARIANT_FIELDS = (
    "name",
    "title",
    "body",
    "image_url",
    "link_url",
    "link_text",
    "segment",
    "lifecycle_stage",
    "active",
)


def _save(obj: Placement | PlacementVariant, *, unique_message: str) -> None:
    try:
        obj.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    # The unique constraints, checked first so that a clash is a field error, not an
    # IntegrityError (the constraint still guards a race).
    if isinstance(obj, Placement):
        field = "key"
        clash = (
            Placement.objects.filter(tenant_id=obj.tenant_id, key=obj.key)
            .exclude(pk=obj.pk)
            .exists()
        )
    else:
        field = "name"
        clash = (
            PlacementVariant.objects.filter(
                tenant_id=obj.tenant_id, placement_id=obj.placement_id, name=obj.name
            )
            .exclude(pk=obj.pk)
            .exists()
        )
    if clash:
        raise ValidationError({field: [unique_message]})
    obj.save()


def _strip(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}


@transaction.atomic
def placement_create(*, tenant: Tenant, key: str, name: str, description: str = "") -> Placement:
    placement = Placement(
        tenant=tenant, **_strip({"key": key, "name": name, "description": description})
    )
    _save(placement, unique_message="Another placement has this key.")
    return placement


@transaction.atomic
def placement_update(*, tenant: Tenant, placement: Placement, **changes: Any) -> Placement:
    unknown = set(changes) - set(PLACEMENT_FIELDS)
    if unknown:
        raise TypeError(f"placement_update: unknown fields {sorted(unknown)}")
    if placement.tenant_id != tenant.pk:
        raise ValueError("another tenant's placement")
    for field, value in _strip(changes).items():
        setattr(placement, field, value)
    placement.updated_at = now()
    _save(placement, unique_message="Another placement has this key.")
    return placement


@transaction.atomic
def placement_delete(*, tenant: Tenant, placement: Placement) -> None:
    PlacementVariant.objects.filter(tenant=tenant, placement=placement).delete()
    Placement.objects.filter(tenant=tenant, pk=placement.pk).delete()


def _check_segment(tenant: Tenant, segment: Segment | None) -> None:
    if segment is not None and segment.tenant_id != tenant.pk:
        raise ValidationError({"segment": ["No such segment."]})


@transaction.atomic
def variant_create(
    *,
    tenant: Tenant,
    placement: Placement,
    name: str,
    title: str,
    body: str = "",
    image_url: str = "",
    link_url: str = "",
    link_text: str = "",
    segment: Segment | None = None,
    lifecycle_stage: str = "",
    position: int | None = None,
    active: bool = True,
) -> PlacementVariant:
    """A new variant; last in the placement's order unless `position` (0 = first) says where."""
    if placement.tenant_id != tenant.pk:
        raise ValueError("another tenant's placement")
    _check_segment(tenant, segment)
    last = PlacementVariant.objects.filter(tenant=tenant, placement=placement).aggregate(
        last=Max("position")
    )["last"]
    variant = PlacementVariant(
        tenant=tenant,
        placement=placement,
        position=0 if last is None else last + 1,
        active=active,
        segment=segment,
        **_strip(
            {
                "name": name,
                "title": title,
                "body": body,
                "image_url": image_url,
                "link_url": link_url,
                "link_text": link_text,
                "lifecycle_stage": lifecycle_stage or "",
            }
        ),
    )
    _save(variant, unique_message="This placement has a variant of this name already.")
    if position is not None:
        variant_move(tenant=tenant, variant=variant, position=position)
    return variant


@transaction.atomic
def variant_update(
    *, tenant: Tenant, variant: PlacementVariant, **changes: Any
) -> PlacementVariant:
    """Change any of VARIANT_FIELDS, and `position` (moves it, see `variant_move`)."""
    position = changes.pop("position", None)
    unknown = set(changes) - set(VARIANT_FIELDS)
    if unknown:
        raise TypeError(f"variant_update: unknown fields {sorted(unknown)}")
    if variant.tenant_id != tenant.pk:
        raise ValueError("another tenant's variant")
    if "segment" in changes:
        _check_segment(tenant, changes["segment"])
    if changes.get("lifecycle_stage") is None and "lifecycle_stage" in changes:
        changes["lifecycle_stage"] = ""
    for field, value in _strip(changes).items():
        setattr(variant, field, value)
    variant.updated_at = now()
    _save(variant, unique_message="This placement has a variant of this name already.")
    if position is not None:
        variant_move(tenant=tenant, variant=variant, position=position)
    return variant


@transaction.atomic
def variant_move(*, tenant: Tenant, variant: PlacementVariant, position: int) -> PlacementVariant:
    """Put the variant at `position` of its placement's priority order (0 = first; beyond the
    end = last) and number the others around it."""
    if variant.tenant_id != tenant.pk:
        raise ValueError("another tenant's variant")
    siblings = list(
        PlacementVariant.objects.select_for_update()
        .filter(tenant=tenant, placement_id=variant.placement_id)
        .order_by("position", "id")
    )
    ordered = [v for v in siblings if v.pk != variant.pk]
    ordered.insert(max(0, min(position, len(ordered))), variant)
    for index, sibling in enumerate(ordered):
        if sibling.position != index:
            PlacementVariant.objects.filter(tenant=tenant, pk=sibling.pk).update(position=index)
        if sibling.pk == variant.pk:
            variant.position = index
    return variant


@transaction.atomic
def variant_delete(*, tenant: Tenant, variant: PlacementVariant) -> None:
    PlacementVariant.objects.filter(tenant=tenant, pk=variant.pk).delete()


# --- deciding ------------------------------------------------------------------------------------


def placements_decide(
    *,
    tenant: Tenant,
    keys: Sequence[str],
    contact: Contact | None,
    variants: Sequence[PlacementVariant] | None = None,
) -> dict[str, PlacementVariant | None]:
    """The variant each placement of `keys` shows this contact (None: an anonymous visitor not
    recorded yet), or None for an unknown key or a placement with nothing to serve. `variants`:
    the placements' active variants, when the caller has read them already
    (selectors.active_variants).

    The segments the placements' active variants target are read from their materialised
    membership, brought up to date for this contact first (segments' own per-contact refresh,
    the one ingestion runs after commit): the worker's refresh task may not have run yet for the
    events this visitor sent a moment ago. Its cost is one read-only statement over all the
    tenant's segments for one contact when nothing changes (docs/personalisation/placements.md
    has the figures)."""
    answer: dict[str, PlacementVariant | None] = dict.fromkeys(keys)
    if variants is None:
        variants = active_variants(tenant=tenant, keys=keys)
    segment_ids = {v.segment_id for v in variants if v.segment_id is not None}
    member_of: set[int] = set()
    if contact is not None and segment_ids:
        segment_memberships_refresh_contacts(tenant=tenant, contact_ids=[contact.pk])
        member_of = set(
            SegmentMembership.objects.filter(
                tenant=tenant, contact=contact, segment_id__in=segment_ids
            ).values_list("segment_id", flat=True)
        )
    stage = contact.lifecycle_stage if contact is not None else ""
    defaults: dict[str, PlacementVariant] = {}
    for variant in variants:
        key = variant.placement.key
        if answer[key] is not None:
            continue
        if not variant.targeted:
            defaults.setdefault(key, variant)
            continue
        if variant.segment_id is not None and variant.segment_id not in member_of:
            continue
        if variant.lifecycle_stage and variant.lifecycle_stage != stage:
            continue
        answer[key] = variant
    for key, variant in defaults.items():
        if answer[key] is None:
            answer[key] = variant
    return answer
