"""Personalisation → Placements: the team's placements with each variant's impressions, clicks
and click-through rate over 30 days; a placement's variants in priority order with a preview of
each; forms to create and edit placements and variants, move variants up or down and
deactivate them.

Every member reads (viewers see the forms read-only); marketers and above build: a viewer's
POST is a 403. Forms
work without JavaScript; htmx refreshes the variant preview as the marketer types.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.forms import add_service_errors
from personalisation.placements import selectors, services
from personalisation.placements.forms import PlacementForm, VariantForm
from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.selectors import STATS_DAYS, VariantFigures
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

TAB = "placements"


def _rows(
    variants: list[PlacementVariant], figures: dict[tuple[str, str], VariantFigures]
) -> list[dict[str, Any]]:
    """The variants in priority order with their figures and what a marketer must know: which
    one is the default, and which are never served (inactive, or a second default)."""
    rows, default_seen = [], False
    for variant in variants:
        note = ""
        is_default = False
        if not variant.active:
            note = "Inactive: never shown."
        elif not variant.targeted:
            if default_seen:
                note = "Never shown: the default above comes first."
            is_default = not default_seen
            default_seen = True
        key = (variant.placement.key, str(variant.public_id))
        rows.append(
            {
                "variant": variant,
                "figures": figures.get(key, VariantFigures()),
                "is_default": is_default,
                "note": note,
            }
        )
    return rows


@require_GET
def placement_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    placements = list(
        selectors.placement_list(tenant=request.tenant).prefetch_related("variants__segment")
    )
    figures = selectors.placement_figures(tenant=request.tenant, placements=placements)
    items = []
    for placement in placements:
        variants = sorted(placement.variants.all(), key=lambda v: (v.position, v.pk))
        for variant in variants:
            variant.placement = placement  # the prefetch's parent: no query per row
        items.append({"placement": placement, "rows": _rows(variants, figures)})
    return render(
        request,
        "personalisation/placements/placement_list.html",
        {"items": items, "days": STATS_DAYS, "tab": TAB},
    )


@require_GET
def placement_detail(request: TenantRequest, tenant_slug: str, placement_id: str) -> HttpResponse:
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    variants = list(selectors.variant_list(tenant=request.tenant, placement=placement))
    for variant in variants:
        variant.placement = placement
    figures = selectors.placement_figures(tenant=request.tenant, placements=[placement])
    return render(
        request,
        "personalisation/placements/placement_detail.html",
        {
            "placement": placement,
            "rows": _rows(variants, figures),
            "days": STATS_DAYS,
            "tab": TAB,
        },
    )


def _refuse_viewers(request: TenantRequest) -> None:
    if request.method == "POST" and not request.membership.can_edit:
        raise PermissionDenied("This needs the marketer role or higher.")


def _read_only_for_viewers(request: TenantRequest, form: forms.Form) -> None:
    if not request.membership.can_edit:
        for field in form.fields.values():
            field.disabled = True


def _placement_form(request: TenantRequest, placement: Placement | None) -> HttpResponse:
    initial = None
    if placement is not None:
        initial = {f: getattr(placement, f) for f in ("key", "name", "description")}
    _refuse_viewers(request)
    form = PlacementForm(request.POST or None, initial=initial)
    _read_only_for_viewers(request, form)
    if request.method == "POST" and form.is_valid():
        try:
            if placement is None:
                placement = services.placement_create(tenant=request.tenant, **form.cleaned_data)
                messages.success(request, "The placement is created. Add its variants.")
            else:
                services.placement_update(
                    tenant=request.tenant, placement=placement, **form.cleaned_data
                )
                messages.success(request, "The placement is saved.")
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("placement_detail", request.tenant.slug, placement.public_id)
    return render(
        request,
        "personalisation/placements/placement_form.html",
        {"form": form, "placement": placement, "tab": TAB},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def placement_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _placement_form(request, None)


@require_http_methods(["GET", "POST"])
def placement_edit(request: TenantRequest, tenant_slug: str, placement_id: str) -> HttpResponse:
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    return _placement_form(request, placement)


def _variant(
    request: TenantRequest, placement_id: str, variant_id: str
) -> tuple[Placement, PlacementVariant]:
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    return placement, selectors.variant_get(
        tenant=request.tenant, placement=placement, public_id=variant_id
    )


def _variant_form(
    request: TenantRequest, placement: Placement, variant: PlacementVariant | None
) -> HttpResponse:
    initial: dict[str, Any] = {"active": True}
    if variant is not None:
        initial = {
            f: getattr(variant, f)
            for f in ("name", "title", "body", "image_url", "link_url", "link_text", "active")
        }
        initial["lifecycle_stage"] = variant.lifecycle_stage
        initial["segment"] = variant.segment.public_id if variant.segment else None
    _refuse_viewers(request)
    form = VariantForm(request.POST or None, initial=initial, tenant=request.tenant)
    _read_only_for_viewers(request, form)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            if variant is None:
                variant = services.variant_create(
                    tenant=request.tenant, placement=placement, **data
                )
                messages.success(request, f"The variant “{variant.name}” is added.")
            else:
                services.variant_update(tenant=request.tenant, variant=variant, **data)
                messages.success(request, f"The variant “{variant.name}” is saved.")
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("placement_detail", request.tenant.slug, placement.public_id)
    preview = _preview_values(form, variant)
    return render(
        request,
        "personalisation/placements/variant_form.html",
        {"form": form, "placement": placement, "variant": variant, "preview": preview, "tab": TAB},
        status=400 if form.errors else 200,
    )


def _preview_values(form: VariantForm, variant: PlacementVariant | None) -> dict[str, str]:
    """What the preview shows: the posted values when there are some, the saved ones else."""
    names = ("title", "body", "image_url", "link_url", "link_text")
    if form.is_bound:
        return {n: str(form.data.get(n, "")).strip() for n in names}
    if variant is not None:
        return {n: getattr(variant, n) for n in names}
    return dict.fromkeys(names, "")


@require_http_methods(["GET", "POST"])
def variant_create(request: TenantRequest, tenant_slug: str, placement_id: str) -> HttpResponse:
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    return _variant_form(request, placement, None)


@require_http_methods(["GET", "POST"])
def variant_edit(
    request: TenantRequest, tenant_slug: str, placement_id: str, variant_id: str
) -> HttpResponse:
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    variant = selectors.variant_get(
        tenant=request.tenant, placement=placement, public_id=variant_id
    )
    return _variant_form(request, placement, variant)


@require_POST
@role_required(Role.MARKETER)
def variant_preview(request: TenantRequest, tenant_slug: str, placement_id: str) -> HttpResponse:
    """The preview of the variant being edited (htmx, as the marketer types): nothing saved."""
    selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    form = VariantForm(request.POST, tenant=request.tenant)
    return render(
        request,
        "personalisation/placements/_preview.html",
        {"preview": _preview_values(form, None)},
    )


@require_POST
@role_required(Role.MARKETER)
def variant_move(
    request: TenantRequest, tenant_slug: str, placement_id: str, variant_id: str
) -> HttpResponse:
    """Up or down one place in the priority order."""
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    variant = selectors.variant_get(
        tenant=request.tenant, placement=placement, public_id=variant_id
    )
    order = list(
        selectors.variant_list(tenant=request.tenant, placement=placement).values_list(
            "pk", flat=True
        )
    )
    step = -1 if request.POST.get("direction") == "up" else 1
    position = max(0, order.index(variant.pk) + step)
    services.variant_move(tenant=request.tenant, variant=variant, position=position)
    return redirect("placement_detail", tenant_slug, placement.public_id)


@require_POST
@role_required(Role.MARKETER)
def variant_toggle(
    request: TenantRequest, tenant_slug: str, placement_id: str, variant_id: str
) -> HttpResponse:
    """Deactivate an active variant (never shown again until activated), activate an inactive
    one."""
    placement = selectors.placement_get(tenant=request.tenant, public_id=placement_id)
    variant = selectors.variant_get(
        tenant=request.tenant, placement=placement, public_id=variant_id
    )
    services.variant_update(tenant=request.tenant, variant=variant, active=not variant.active)
    messages.success(
        request,
        f"“{variant.name}” is active: it is shown to the visitors it targets."
        if variant.active
        else f"“{variant.name}” is inactive: it is never shown.",
    )
    return redirect("placement_detail", tenant_slug, placement.public_id)
