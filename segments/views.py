"""Segments UI: the list (with ready-made segments), a segment and its members, and the rule
builder. The builder posts the whole form on every change and gets back the re-rendered editor
with the summary, the live count and a sample (`segment_builder`), so the server is the only
source of truth; without JavaScript the same buttons post to the page, which re-renders."""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audience import selectors as audience_selectors
from core.pagination import keyset_page
from segments import forms, rules, selectors, services
from segments.models import Segment
from segments.presets import PRESETS, preset_add
from segments.services import SegmentError
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

PAGE_SIZE = 50
SAMPLE_SIZE = 10
FORM_TEMPLATE = "segments/segment_form.html"


@require_GET
def segment_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    segments = list(selectors.segment_list(tenant=request.tenant))
    by_name = {s.name: s for s in segments}
    presets = [(preset, by_name.get(preset.name)) for preset in PRESETS.values()]
    return render(request, "segments/segment_list.html", {"segments": segments, "presets": presets})


@require_GET
def segment_detail(request: TenantRequest, tenant_slug: str, segment_id: UUID) -> HttpResponse:
    segment = selectors.segment_get(tenant=request.tenant, public_id=segment_id)
    members = selectors.segment_members(tenant=request.tenant, segment=segment)
    page = keyset_page(members, field="created_at", cursor=request.GET.get("after"), size=PAGE_SIZE)
    names = selectors.segment_names(tenant=request.tenant)
    ctx = {"segment": segment, "summary": rules.describe(segment.rules, names), "page": page}
    template = "segments/segment_detail.html"
    if request.htmx and request.htmx.target == "segment-members":
        template += "#members"
    return render(request, template, ctx)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(Role.MARKETER)
def segment_export(
    request: TenantRequest, tenant_slug: str, segment_id: UUID
) -> StreamingHttpResponse:
    """The segment's current members as CSV, streamed: the contacts export's columns and formula
    defusing (audience's export rows), oldest member first. Like the contacts export, marketers
    and up only: it is the whole audience's personal data in one file."""
    segment = selectors.segment_get(tenant=request.tenant, public_id=segment_id)
    members = selectors.segment_members(tenant=request.tenant, segment=segment)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in audience_selectors.contact_export_rows(members)),
        content_type="text/csv; charset=utf-8",
    )
    name = slugify(segment.name) or "segment"
    response["Content-Disposition"] = (
        f'attachment; filename="{request.tenant.slug}-{name}-members.csv"'
    )
    return response


def _builder_context(
    request: TenantRequest,
    *,
    tree: dict[str, Any],
    segment: Segment | None,
    focus: str = "",
    errors: dict[str, str] | None = None,
    data: QueryDict | None = None,
) -> dict[str, Any]:
    """The builder partial's context: the editor, and when the rules are usable their summary,
    live count and a sample. `errors` (from saving) are shown on top of the builder's own."""
    checked = forms.check(tree)
    usable, rules_error = checked.tree, ""
    if usable is not None and usable["children"]:
        # What saving checks beyond the tree's shape: referenced segments are the team's own
        # and do not lead back to this one.
        try:
            usable = services.segment_rules_check(
                tenant=request.tenant, rules=usable, segment=segment
            )
        except SegmentError as exc:
            usable, rules_error = None, exc.message
    names = selectors.segment_names(tenant=request.tenant)
    others = sorted(
        ((public_id, name) for public_id, name in names.items()),
        key=lambda item: item[1].lower(),
    )
    if segment is not None:  # a segment cannot include itself
        others = [item for item in others if item[0] != str(segment.public_id)]
    builder_url = (
        reverse("segment_builder_edit", args=[request.tenant.slug, segment.public_id])
        if segment is not None
        else reverse("segment_builder", args=[request.tenant.slug])
    )
    ctx: dict[str, Any] = {
        "root": forms.builder_nodes(
            tree, errors={**checked.errors, **(errors or {})}, focus=focus, data=data
        ),
        "choices": forms.builder_choices(segments=others),
        "builder_url": builder_url,
        "rules_error": rules_error,
        "count": None,
    }
    if usable is not None:
        ctx["summary"] = rules.describe(usable, names) if usable["children"] else ""
        ctx["count"] = selectors.rules_count(tenant=request.tenant, rules=usable)
        ctx["sample"] = selectors.rules_sample(
            tenant=request.tenant, rules=usable, size=SAMPLE_SIZE
        )
    return ctx


def _builder_page(request: TenantRequest, *, segment: Segment | None) -> HttpResponse:
    """New and edit: GET shows the builder; POST saves, or applies a builder button when the
    page runs without JavaScript."""
    if segment is not None:
        cancel_url = reverse("segment_detail", args=[request.tenant.slug, segment.public_id])
        save_url = reverse("segment_edit", args=[request.tenant.slug, segment.public_id])
    else:
        cancel_url = reverse("segment_list", args=[request.tenant.slug])
        save_url = reverse("segment_new", args=[request.tenant.slug])
    page = {
        "segment": segment,
        "cancel_url": cancel_url,
        "save_url": save_url,
        "readonly": not request.membership.can_edit,
    }
    if request.method == "GET":
        initial = {"name": segment.name, "description": segment.description} if segment else {}
        tree = segment.rules if segment is not None else rules.empty_tree()
        form = forms.SegmentForm(initial=initial)
        ctx = _builder_context(request, tree=tree, segment=segment)
        return render(request, FORM_TEMPLATE, {**page, **ctx, "form": form})

    tree = forms.tree_from_data(request.POST)
    action = request.POST.get("action", "save")
    if action != "save":
        # Not saving yet: keep what was typed, without complaints about it.
        form = forms.SegmentForm(
            initial={key: request.POST.get(key, "") for key in ("name", "description")}
        )
        applied = forms.apply_action(tree, action, request.POST)
        ctx = _builder_context(
            request, tree=applied.tree, segment=segment, focus=applied.focus, data=request.POST
        )
        return render(request, FORM_TEMPLATE, {**page, **ctx, "form": form})

    form = forms.SegmentForm(request.POST)
    checked = forms.check(tree, for_save=True)
    rules_error = ""
    if form.is_valid() and checked.tree is not None:
        fields = {
            "tenant": request.tenant,
            "name": form.cleaned_data["name"],
            "description": form.cleaned_data["description"],
            "rules": checked.tree,
        }
        try:
            if segment is None:
                saved = services.segment_create(**fields)
            else:
                saved = services.segment_update(segment=segment, **fields)
        except SegmentError as exc:
            if exc.field == "name":
                form.add_error("name", exc.message)
            else:
                rules_error = exc.message
        else:
            messages.success(
                request,
                f"Saved “{saved.name}”: {saved.member_count} contact"
                f"{'' if saved.member_count == 1 else 's'} now in it.",
            )
            return redirect(
                "segment_detail", tenant_slug=request.tenant.slug, segment_id=saved.public_id
            )
    ctx = _builder_context(
        request, tree=tree, segment=segment, errors=checked.errors, data=request.POST
    )
    ctx["rules_error"] = rules_error or ctx["rules_error"]
    return render(request, FORM_TEMPLATE, {**page, **ctx, "form": form}, status=400)


@require_http_methods(["GET", "POST"])
def segment_new(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _builder_page(request, segment=None)


@require_http_methods(["GET", "POST"])
def segment_edit(request: TenantRequest, tenant_slug: str, segment_id: UUID) -> HttpResponse:
    segment = selectors.segment_get(tenant=request.tenant, public_id=segment_id)
    return _builder_page(request, segment=segment)


@require_POST
def segment_builder(
    request: TenantRequest, tenant_slug: str, segment_id: UUID | None = None
) -> HttpResponse:
    """The builder after one change (htmx): the posted form, with the pressed button applied."""
    segment = (
        selectors.segment_get(tenant=request.tenant, public_id=segment_id) if segment_id else None
    )
    tree = forms.tree_from_data(request.POST)
    applied = forms.apply_action(tree, request.POST.get("action", ""), request.POST)
    ctx = _builder_context(
        request, tree=applied.tree, segment=segment, focus=applied.focus, data=request.POST
    )
    return render(request, f"{FORM_TEMPLATE}#builder", ctx)


@require_POST
def segment_delete(request: TenantRequest, tenant_slug: str, segment_id: UUID) -> HttpResponse:
    segment = selectors.segment_get(tenant=request.tenant, public_id=segment_id)
    try:
        services.segment_delete(tenant=request.tenant, segment=segment)
    except SegmentError as exc:
        messages.error(request, f"“{segment.name}” was not deleted. {exc.message}")
        return redirect("segment_detail", tenant_slug=request.tenant.slug, segment_id=segment_id)
    messages.success(request, f"Deleted “{segment.name}”.")
    return redirect("segment_list", tenant_slug=request.tenant.slug)


@require_POST
def segment_presets(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Add a ready-made segment (one click) and show it."""
    key = request.POST.get("key", "")
    if key not in PRESETS:
        raise Http404("No such ready-made segment")
    try:
        segment = preset_add(tenant=request.tenant, key=key)
    except SegmentError as exc:
        messages.error(request, exc.message)
        return redirect("segment_list", tenant_slug=request.tenant.slug)
    messages.success(request, f"Added “{segment.name}”. It is your segment now: change it freely.")
    return redirect("segment_detail", tenant_slug=request.tenant.slug, segment_id=segment.public_id)
