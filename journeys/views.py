"""Journeys UI: the list (with the ready-made journeys) and the editor.

The editor is one page (`journeys/editor.html`): a toolbar, the canvas and a side panel. The
canvas is drawn by the server — cards at their (x, y), ports, SVG edges computed here — and
every change (add, edit, move, connect, delete) posts to a view that calls the journey's
services and answers with the re-rendered canvas (`#canvas`), plus the side panel out of band
when it changed: the server is the only source of truth, and static/js/journey-editor.js only
pans, zooms, drags and wires the keyboard. Without JavaScript the links and forms still work:
each answers with the whole page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.services import user_email_verified
from core.pagination import keyset_page
from core.storable import text_problem
from journeys import forms, graph, presets, selectors, services
from journeys.canvas import (
    COUNT_NAMES,
    canvas_build,
    event_names,
    kind_or_none,
    node_title,
    palette,
    setting_choices,
)
from journeys.models import Journey, JourneyVersion
from journeys.node_kinds import Category, NodeKind, NodeSettingsError
from messaging.selectors import template_list
from segments.selectors import segment_names
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

EDITOR = "journeys/editor.html"
PEOPLE_PAGE_SIZE = 25
POLL_SECONDS = 5


# --- the page's context ------------------------------------------------------------------------


@dataclass
class EditorState:
    journey: Journey
    version: JourneyVersion | None  # what is shown
    draft: JourneyVersion | None
    published: JourneyVersion | None
    readonly: bool  # a viewer, or an old/live version looked at
    graph: graph.Graph


def _state(request: TenantRequest, journey: Journey, number: str | None = None) -> EditorState:
    draft = selectors.journey_draft(journey=journey)
    published = selectors.journey_published(journey=journey)
    version: JourneyVersion | None
    pinned = False
    if number:
        try:
            version = selectors.journey_versions(journey=journey).filter(number=int(number)).first()
        except ValueError:
            version = None
        if version is None:
            raise Http404("No such version")
        pinned = version.state != JourneyVersion.State.DRAFT
    else:
        version = selectors.journey_current(journey=journey)
    archived = journey.status == Journey.Status.ARCHIVED
    readonly = not request.membership.can_edit or pinned or archived
    g = selectors.version_graph(version=version) if version is not None else graph.Graph()
    return EditorState(journey, version, draft, published, readonly, g)


def _urls(journey: Journey, slug: str) -> dict[str, str]:
    args = [slug, journey.public_id]
    names = [
        "journey_editor",
        "journey_canvas",
        "journey_counts",
        "journey_node_add",
        "journey_rename",
        "journey_settings",
        "journey_publish",
        "journey_pause",
        "journey_resume",
        "journey_archive",
        "journey_test_run",
        "journey_test_send",
        "journey_retry",
    ]
    return {name.removeprefix("journey_"): reverse(name, args=args) for name in names}


def _node_urls(journey: Journey, slug: str, key: str) -> dict[str, str]:
    args = [slug, journey.public_id, key]
    return {
        "settings": reverse("journey_node", args=args),
        "move": reverse("journey_node_move", args=args),
        "delete": reverse("journey_node_delete", args=args),
        "connect": reverse("journey_node_connect", args=args),
        "people": reverse("journey_node_people", args=args),
    }


def _context(
    request: TenantRequest, state: EditorState, *, selected: str = "", **extra: Any
) -> dict[str, Any]:
    journey = state.journey
    stats = selectors.node_stats(journey=journey) if state.version is not None else {}
    names = {
        str(public_id): name
        for public_id, name in template_list(tenant=request.tenant).values_list("public_id", "name")
    }
    canvas = canvas_build(state.graph, stats=stats, selected=selected, template_names=names)
    slug = request.tenant.slug
    editing_live = (
        state.version is not None
        and state.version.state == JourneyVersion.State.DRAFT
        and state.published is not None
    )
    return {
        "journey": journey,
        "version": state.version,
        "draft": state.draft,
        "published": state.published,
        "readonly": state.readonly,
        "can_edit": request.membership.can_edit,
        "editing_live": editing_live,
        "viewing_old": state.version is not None
        and state.version.state != JourneyVersion.State.DRAFT
        and state.draft is not None,
        "canvas": canvas,
        "card_width": graph.CARD_WIDTH,
        "card_height": graph.CARD_HEIGHT,
        "urls": _urls(journey, slug),
        "node_url_base": reverse("journey_editor", args=[slug, journey.public_id]),
        "palette": palette(),
        "poll": POLL_SECONDS if journey.status == Journey.Status.LIVE else 0,
        "versions": list(selectors.journey_versions(journey=journey)[:10]),
        "name_form": forms.JourneyNameForm(initial={"name": journey.name}),
        "event_names": lambda: event_names(request.tenant),  # only the whole page reads it
        **extra,
    }


def _node_panel(
    request: TenantRequest,
    state: EditorState,
    key: str,
    *,
    settings: dict[str, Any] | None = None,
    label: str | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    node = state.graph.node(key)
    if node is None:
        raise Http404("No such step")
    kind = kind_or_none(node.kind)
    problems = [p for p in graph.validate(state.graph) if p.node_key == key]
    shown_errors = {p.field: p.message for p in problems if p.field and p.field in _fields(kind)}
    shown_errors.update(errors or {})
    general = [p.message for p in problems if p.field not in shown_errors]
    controls = (
        forms.setting_controls(
            kind,
            node.settings if settings is None else settings,
            choices=setting_choices(request.tenant),
            errors=shown_errors,
            segment_names=segment_names(tenant=request.tenant),
        )
        if kind is not None
        else []
    )
    edges = {e.port: e.target for e in state.graph.edges if e.source == key}
    others = [
        (n.key, node_title(n, kind_or_none(n.kind)))
        for n in state.graph.nodes
        if n.key != key and _category_of(n.kind) != Category.TRIGGER
    ]
    ports = [
        {
            "name": port,
            "label": kind.port_label(port, node.settings) if kind else port,
            "target": edges.get(port, ""),
        }
        for port in graph.node_ports(node)
    ]
    where = graph.positions(state.graph)[key]
    return {
        "panel": "node",
        "node": node,
        "node_kind": kind,
        "node_title": node_title(node, kind),
        "node_label": node.label if label is None else label,
        "controls": controls,
        "general_problems": general,
        "ports": ports,
        "targets": others,
        "position": where,
        "node_urls": _node_urls(state.journey, request.tenant.slug, key),
        "saved": saved,
    }


def _fields(kind: NodeKind | None) -> set[str]:
    return {f.key for f in kind.fields} if kind is not None else set()


def _category_of(kind_key: str) -> str:
    kind = kind_or_none(kind_key)
    return kind.category if kind is not None else ""


def _answer(
    request: TenantRequest,
    state: EditorState,
    ctx: dict[str, Any],
    *,
    panel: bool,
    status: int = 200,
) -> HttpResponse:
    """htmx: the canvas, and the panel out of band when it changed. Without htmx: the page."""
    if request.htmx:
        template = f"{EDITOR}#canvas_and_panel" if panel else f"{EDITOR}#canvas_write"
        return render(request, template, {**ctx, "oob": True}, status=status)
    return render(request, EDITOR, ctx, status=status)


def _write_state(request: TenantRequest, journey_id: UUID) -> EditorState:
    """The journey for a change: its draft (or what the editor shows); refused when archived."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    if journey.status == Journey.Status.ARCHIVED:
        raise Http404("An archived journey cannot change")
    return state


def _error_message(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _error_fields(exc: Exception) -> dict[str, str]:
    for attr in ("errors", "fields"):
        value = getattr(exc, attr, None)
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    return {}


# --- the list ----------------------------------------------------------------------------------


@require_GET
def journey_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    journeys = list(
        selectors.journey_list(
            tenant=request.tenant, include_archived=request.GET.get("archived") == "1"
        )
    )
    return render(
        request,
        "journeys/journey_list.html",
        {
            "journeys": journeys,
            "presets": _presets(),
            "show_archived": request.GET.get("archived") == "1",
            "form": forms.JourneyNameForm(),
        },
    )


def _presets() -> list[tuple[str, list[presets.Preset]]]:
    """The ready-made journeys by their gallery category, in their order."""
    groups: dict[str, list[presets.Preset]] = {}
    for preset in presets.PRESETS.values():
        groups.setdefault(preset.category, []).append(preset)
    return list(groups.items())


@require_http_methods(["GET", "POST"])
def journey_new(request: TenantRequest, tenant_slug: str) -> HttpResponseBase:
    """GET: the name form (a viewer sees it disabled); POST creates the journey (a trigger
    and nothing else yet) and opens it in the editor."""
    if request.method == "GET":
        ctx = {"form": forms.JourneyNameForm(), "readonly": not request.membership.can_edit}
        return render(request, "journeys/journey_new.html", ctx)
    return _journey_create(request)


@role_required(Role.MARKETER)
def _journey_create(request: TenantRequest) -> HttpResponse:
    form = forms.JourneyNameForm(request.POST)
    if form.is_valid():
        try:
            journey = services.journey_create(
                tenant=request.tenant, name=form.cleaned_data["name"], actor=request.user
            )
        except (services.JourneyError, ValidationError) as exc:
            form.add_error("name", _error_message(exc))
        else:
            messages.success(request, f"Created “{journey.name}”. Start with its trigger.")
            return redirect(
                "journey_editor", tenant_slug=request.tenant.slug, journey_id=journey.public_id
            )
    return render(request, "journeys/journey_new.html", {"form": form}, status=400)


@require_POST
@role_required(Role.MARKETER)
def journey_presets(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Create a journey from a ready-made one (one click) and open it in the editor."""
    key = request.POST.get("key", "")
    try:
        journey = presets.preset_create(tenant=request.tenant, key=key, actor=request.user)
    except KeyError:
        raise Http404("No such ready-made journey") from None
    except (services.JourneyError, ValidationError, ValueError) as exc:
        messages.error(request, _error_message(exc))
        return redirect("journey_list", tenant_slug=request.tenant.slug)
    messages.success(
        request, f"Added “{journey.name}”. It is a draft: check its steps, then publish it."
    )
    return redirect("journey_editor", tenant_slug=request.tenant.slug, journey_id=journey.public_id)


# --- the editor ---------------------------------------------------------------------------------


@require_GET
def journey_editor(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """The editor page. `?node=<key>` opens a step's settings in the side panel, `?people=<key>`
    who is there, `?test=1` the test run, `?version=<n>` an older version, read-only."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey, request.GET.get("version"))
    extra: dict[str, Any] = {}
    selected = request.GET.get("node", "")
    if selected:
        extra = _node_panel(request, state, selected)
    elif request.GET.get("people"):
        selected = request.GET["people"]
        extra = _people_panel(request, state, selected)
    elif request.GET.get("test"):
        extra = _test_panel(request, state)
    ctx = _context(request, state, selected=selected, **extra)
    if request.htmx and request.htmx.target == "panel":
        return render(request, f"{EDITOR}#panel", ctx)
    return render(request, EDITOR, ctx)


@require_GET
def journey_canvas(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey, request.GET.get("version"))
    ctx = _context(request, state, selected=request.GET.get("node", ""))
    return render(request, f"{EDITOR}#canvas", ctx)


@require_GET
def journey_counts(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """Every card's counts, swapped into the cards in place (polled on a live journey)."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey, request.GET.get("version"))
    ctx = _context(request, state)
    return render(request, f"{EDITOR}#counts", ctx)


@require_POST
@role_required(Role.MARKETER)
def journey_node_add(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """Add a step of `kind` after `source`'s `port` (or, with neither, the first step) and
    open its settings."""
    state = _write_state(request, journey_id)
    kind = request.POST.get("kind", "")
    source, port = request.POST.get("source", ""), request.POST.get("port", "")
    try:
        node = services.node_add(
            journey=state.journey,
            kind=kind,
            after=(source, port) if source else None,
            actor=request.user,
        )
    except (services.JourneyError, NodeSettingsError, ValidationError) as exc:
        messages.error(request, _error_message(exc))
        state = _state(request, state.journey)
        return _answer(request, state, _context(request, state), panel=True, status=400)
    state = _state(request, state.journey)
    key = node.key if hasattr(node, "key") else str(node)
    ctx = _context(request, state, selected=key, **_node_panel(request, state, key))
    ctx["focus_first_field"] = True
    return _answer(request, state, ctx, panel=True)


@require_http_methods(["GET", "POST"])
def journey_node(
    request: TenantRequest, tenant_slug: str, journey_id: UUID, node_key: str
) -> HttpResponseBase:
    """A step's settings: GET shows the form in the side panel, POST saves it."""
    if request.method == "GET":
        journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
        state = _state(request, journey, request.GET.get("version"))
        ctx = _context(request, state, selected=node_key, **_node_panel(request, state, node_key))
        if request.htmx:
            return render(request, f"{EDITOR}#panel", ctx)
        return render(request, EDITOR, ctx)
    return _node_save(request, journey_id, node_key)


@role_required(Role.MARKETER)
def _node_save(request: TenantRequest, journey_id: UUID, node_key: str) -> HttpResponse:
    state = _write_state(request, journey_id)
    node = state.graph.node(node_key)
    if node is None:
        raise Http404("No such step")
    kind = kind_or_none(node.kind)
    if kind is None:
        raise Http404("This step's kind is not known here.")
    label = request.POST.get("label", "").strip()
    new_kind = request.POST.get("kind", "")
    settings: dict[str, Any] = dict(node.settings)
    try:
        if (problem := text_problem(label)) is not None:
            raise forms.SettingsParseError({"": f"The name on the card {problem}."})
        if new_kind and new_kind != node.kind:
            # "Starts when" changed: the trigger becomes the new kind, its settings start from
            # that kind's defaults (the form shown was the old kind's).
            services.node_update(
                journey=state.journey, key=node_key, kind=new_kind, label=label, actor=request.user
            )
        else:
            settings = forms.settings_from_post(kind, request.POST, current=node.settings)
            services.node_update(
                journey=state.journey,
                key=node_key,
                settings=settings,
                label=label,
                actor=request.user,
            )
    except forms.SettingsParseError as exc:
        ctx = _context(
            request,
            state,
            selected=node_key,
            **_node_panel(request, state, node_key, label=label, errors=exc.errors),
        )
        ctx["form_error"] = exc.errors.get("", "")
        return _answer(request, state, ctx, panel=True, status=400)
    except (services.JourneyError, NodeSettingsError, ValidationError) as exc:
        errors = _error_fields(exc) or {"": _error_message(exc)}
        ctx = _context(
            request,
            state,
            selected=node_key,
            **_node_panel(request, state, node_key, settings=settings, label=label, errors=errors),
        )
        ctx["form_error"] = errors.get("", "")
        return _answer(request, state, ctx, panel=True, status=400)
    state = _state(request, state.journey)
    ctx = _context(
        request, state, selected=node_key, **_node_panel(request, state, node_key, saved=True)
    )
    if not request.htmx:
        messages.success(request, "Saved the step.")
        return redirect(f"{ctx['urls']['editor']}?node={node_key}")
    return _answer(request, state, ctx, panel=True)


@require_POST
@role_required(Role.MARKETER)
def journey_node_move(
    request: TenantRequest, tenant_slug: str, journey_id: UUID, node_key: str
) -> HttpResponse:
    state = _write_state(request, journey_id)
    try:
        fx, fy = float(request.POST.get("x", "")), float(request.POST.get("y", ""))
        if not (math.isfinite(fx) and math.isfinite(fy)):
            raise ValueError
        # Within the canvas the layout could ever draw (an integer column, not infinity).
        x, y = (min(round(v), graph.COORDINATE_MAX) for v in (fx, fy))
    except (TypeError, ValueError):
        messages.error(request, "A position is two numbers, x and y.")
        return _answer(request, state, _context(request, state), panel=False, status=400)
    try:
        services.node_move(journey=state.journey, key=node_key, x=max(0, x), y=max(0, y))
    except services.JourneyError as exc:
        messages.error(request, _error_message(exc))
    state = _state(request, state.journey)
    selected = request.POST.get("selected", "")
    if not request.htmx:
        return redirect(f"{_urls(state.journey, request.tenant.slug)['editor']}?node={node_key}")
    return _answer(request, state, _context(request, state, selected=selected), panel=False)


@require_POST
@role_required(Role.MARKETER)
def journey_node_delete(
    request: TenantRequest, tenant_slug: str, journey_id: UUID, node_key: str
) -> HttpResponse:
    state = _write_state(request, journey_id)
    if state.graph.node(node_key) is None:
        raise Http404("No such step")
    try:
        services.node_delete(journey=state.journey, key=node_key, actor=request.user)
    except services.JourneyError as exc:
        messages.error(request, _error_message(exc))
    else:
        messages.success(request, "Deleted the step.")
    state = _state(request, state.journey)
    if not request.htmx:
        return redirect("journey_editor", tenant_slug=request.tenant.slug, journey_id=journey_id)
    ctx = _context(request, state, panel="help")
    return _answer(request, state, ctx, panel=True)


@require_POST
@role_required(Role.MARKETER)
def journey_node_connect(
    request: TenantRequest, tenant_slug: str, journey_id: UUID, node_key: str
) -> HttpResponse:
    """Point one of the step's ports at another step (`target`), or at nothing."""
    state = _write_state(request, journey_id)
    port, target = request.POST.get("port", ""), request.POST.get("target", "")
    try:
        if target:
            services.edge_connect(journey=state.journey, source=node_key, port=port, target=target)
        else:
            services.edge_disconnect(journey=state.journey, source=node_key, port=port)
    except (services.JourneyError, ValidationError) as exc:
        messages.error(request, _error_message(exc))
        status = 400
    else:
        status = 200
    state = _state(request, state.journey)
    if not request.htmx:
        return redirect(f"{_urls(state.journey, request.tenant.slug)['editor']}?node={node_key}")
    with_panel = request.POST.get("from") != "canvas"
    extra = _node_panel(request, state, node_key) if with_panel else {}
    ctx = _context(request, state, selected=node_key, **extra)
    return _answer(request, state, ctx, panel=with_panel, status=status)


def _people_panel(request: TenantRequest, state: EditorState, key: str) -> dict[str, Any]:
    count = request.GET.get("count", "")
    if count not in COUNT_NAMES:
        count = ""
    node = state.graph.node(key)
    if node is None:
        raise Http404("No such step")
    enrollments = selectors.node_enrollments(
        tenant=request.tenant, journey=state.journey, node_key=key, state=count or None
    )
    page = keyset_page(
        enrollments, field="entered_at", cursor=request.GET.get("after"), size=PEOPLE_PAGE_SIZE
    )
    return {
        "panel": "people",
        "node": node,
        "node_title": node_title(node, kind_or_none(node.kind)),
        "count": count,
        "count_names": COUNT_NAMES,
        "page": page,
        "node_urls": _node_urls(state.journey, request.tenant.slug, key),
    }


@require_GET
def journey_node_people(
    request: TenantRequest, tenant_slug: str, journey_id: UUID, node_key: str
) -> HttpResponse:
    """Who is behind a step's counts, newest first, with failed steps' reasons."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    ctx = _context(request, state, selected=node_key, **_people_panel(request, state, node_key))
    if request.htmx:
        return render(request, f"{EDITOR}#panel", ctx)
    return render(request, EDITOR, ctx)


@require_POST
@role_required(Role.MARKETER)
def journey_retry(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """Retry failed enrollments (their public ids in `enrollment`)."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    ids = request.POST.getlist("enrollment")
    chosen = [selectors.enrollment_get(tenant=request.tenant, public_id=i) for i in ids]
    chosen = [e for e in chosen if e.journey_id == journey.pk]
    if not chosen:
        messages.error(request, "Choose someone to retry.")
    else:
        try:
            retried = services.enrollments_retry(
                tenant=request.tenant, journey=journey, enrollments=chosen, actor=request.user
            )
        except services.JourneyError as exc:
            messages.error(request, _error_message(exc))
        else:
            n = retried if isinstance(retried, int) else len(chosen)
            messages.success(request, f"Retrying {n} {'person' if n == 1 else 'people'}.")
    node_key = request.POST.get("node", "")
    url = _urls(journey, request.tenant.slug)["editor"]
    return redirect(f"{url}?people={node_key}&count=failed" if node_key else url)


# --- the toolbar --------------------------------------------------------------------------------


@require_POST
@role_required(Role.MARKETER)
def journey_rename(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    form = forms.JourneyNameForm(request.POST)
    if form.is_valid():
        try:
            services.journey_update(
                journey=journey, name=form.cleaned_data["name"], actor=request.user
            )
        except (services.JourneyError, ValidationError) as exc:
            messages.error(request, _error_message(exc))
        else:
            messages.success(request, f"Renamed to “{form.cleaned_data['name']}”.")
    else:
        messages.error(request, "Give the journey a name (at most 120 characters).")
    return redirect("journey_editor", tenant_slug=request.tenant.slug, journey_id=journey_id)


def _settings_initial(version: JourneyVersion | None) -> dict[str, Any]:
    if version is None:
        return {"reentry": "never", "exit_on_goal": True}
    return {
        "reentry": version.reentry,
        "reentry_days": version.reentry_days,
        "max_enrollments": version.max_enrollments,
        "exit_on_goal": version.exit_on_goal,
        "exit_events": "\n".join(version.exit_events or []),
    }


@require_http_methods(["GET", "POST"])
def journey_settings(
    request: TenantRequest, tenant_slug: str, journey_id: UUID
) -> HttpResponseBase:
    """Re-entry, the cap, the goal's exit and exit events: GET the form (the dialog's body),
    POST saves it into the draft."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    if request.method == "GET":
        form = forms.JourneySettingsForm(initial=_settings_initial(state.version))
        return _settings_answer(request, state, form)
    return _settings_save(request, state)


@role_required(Role.MARKETER)
def _settings_save(request: TenantRequest, state: EditorState) -> HttpResponse:
    if state.journey.status == Journey.Status.ARCHIVED:
        raise Http404("An archived journey cannot change")
    form = forms.JourneySettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.journey_settings_update(
                journey=state.journey,
                reentry=data["reentry"],
                reentry_days=data["reentry_days"] if data["reentry"] == "after" else None,
                max_enrollments=data["max_enrollments"],
                exit_on_goal=data["exit_on_goal"],
                exit_events=data["exit_events"],
                actor=request.user,
            )
        except (services.JourneyError, ValidationError) as exc:
            form.add_error(None, _error_message(exc))
        else:
            messages.success(
                request, "Saved the journey's settings (they go live when you publish)."
            )
            return redirect(
                "journey_editor",
                tenant_slug=request.tenant.slug,
                journey_id=state.journey.public_id,
            )
    return _settings_answer(request, state, form, status=400)


def _settings_answer(
    request: TenantRequest, state: EditorState, form: forms.JourneySettingsForm, status: int = 200
) -> HttpResponse:
    ctx = {**_context(request, state), "settings_form": form, "page_mode": "settings"}
    if request.htmx:
        return render(request, "journeys/_settings_form.html", ctx, status=status)
    return render(request, "journeys/journey_settings.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
def journey_publish(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponseBase:
    """GET: what publishing would do (the problems to fix first, or the choice for people in
    flight); POST publishes."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    if request.method == "POST":
        return _publish(request, state)
    return _publish_answer(request, state)


def _publish_context(request: TenantRequest, state: EditorState) -> dict[str, Any]:
    ctx = _context(request, state)
    waiting = 0
    if state.published is not None:
        waiting = selectors.journey_enrollments(
            tenant=request.tenant, journey=state.journey, state="open"
        ).count()
    ctx.update(
        publish_problems=ctx["canvas"].problems,
        has_draft=state.draft is not None,
        next_number=state.draft.number if state.draft else None,
        people_in_flight=waiting,
    )
    return ctx


def _publish_answer(request: TenantRequest, state: EditorState, status: int = 200) -> HttpResponse:
    ctx = _publish_context(request, state)
    if request.htmx:
        return render(request, "journeys/_publish.html", ctx, status=status)
    return render(request, "journeys/journey_publish.html", ctx, status=status)


@role_required(Role.MARKETER)
def _publish(request: TenantRequest, state: EditorState) -> HttpResponse:
    move = request.POST.get("move_waiting") == "yes"
    try:
        version = services.journey_publish(
            journey=state.journey, actor=request.user, move_waiting=move
        )
    except (services.JourneyError, ValidationError) as exc:
        messages.error(request, _error_message(exc))
        return _publish_answer(request, state, status=400)
    number = getattr(version, "number", None)
    messages.success(
        request,
        f"Published{f' version {number}' if number else ''}: "
        f"“{state.journey.name}” is live."
        + (" People waiting at unchanged steps moved to it." if move else ""),
    )
    response = redirect(
        "journey_editor", tenant_slug=request.tenant.slug, journey_id=state.journey.public_id
    )
    if request.htmx:
        answer = HttpResponse(status=204)
        answer["HX-Redirect"] = response["Location"]
        return answer
    return response


def _lifecycle(request: TenantRequest, journey_id: UUID, verb: str, done: str) -> HttpResponse:
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    action = getattr(services, f"journey_{verb}")
    try:
        action(journey=journey, actor=request.user)
    except (services.JourneyError, ValidationError) as exc:
        messages.error(request, _error_message(exc))
    else:
        messages.success(request, done.format(name=journey.name))
    return redirect("journey_editor", tenant_slug=request.tenant.slug, journey_id=journey_id)


@require_POST
@role_required(Role.MARKETER)
def journey_pause(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    return _lifecycle(
        request,
        journey_id,
        "pause",
        "Paused “{name}”: no one enters, and everyone in it waits where they are.",
    )


@require_POST
@role_required(Role.MARKETER)
def journey_resume(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    return _lifecycle(
        request, journey_id, "resume", "Resumed “{name}”: people go on from where they were."
    )


@require_POST
@role_required(Role.MARKETER)
def journey_archive(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    return _lifecycle(
        request, journey_id, "archive", "Archived “{name}”: everyone still in it has left."
    )


# --- the test run -------------------------------------------------------------------------------


def _test_panel(request: TenantRequest, state: EditorState) -> dict[str, Any]:
    from audience.selectors import contact_get, contact_list

    search = forms.ContactSearchForm(request.GET or None)
    query = request.GET.get("q", "").strip()
    found = list(contact_list(tenant=request.tenant, search=query)[:8]) if query else []
    contact = None
    result = None
    error = ""
    if request.GET.get("contact"):
        contact = contact_get(tenant=request.tenant, public_id=request.GET["contact"])
        if state.version is None:
            error = "The journey has no steps yet."
        else:
            try:
                result = _simulate(request, state, contact)
            except Exception as exc:  # the test run explains, it never breaks the editor
                error = _error_message(exc)
    return {
        "panel": "test",
        "search_form": search,
        "query": query,
        "found": found,
        "contact": contact,
        "result": result,
        "test_error": error,
        "email_verified": user_email_verified(request.user),
    }


def _simulate(request: TenantRequest, state: EditorState, contact: Any) -> Any:
    from journeys import simulate

    return simulate.simulate(
        tenant=request.tenant, journey=state.journey, version=state.version, contact=contact
    )


@require_GET
def journey_test_run(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """Pick a contact (search by email) and see the path they would take now, without sending."""
    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    ctx = _context(request, state, **_test_panel(request, state))
    if request.htmx:
        return render(request, f"{EDITOR}#panel", ctx)
    return render(request, EDITOR, ctx)


@require_POST
@role_required(Role.MARKETER)
def journey_test_send(request: TenantRequest, tenant_slug: str, journey_id: UUID) -> HttpResponse:
    """Send the test run's messages to the marketer's own address."""
    from audience.selectors import contact_get
    from journeys import simulate

    journey = selectors.journey_get(tenant=request.tenant, public_id=journey_id)
    state = _state(request, journey)
    contact = contact_get(tenant=request.tenant, public_id=request.POST.get("contact", ""))
    url = f"{_urls(journey, request.tenant.slug)['test_run']}?contact={contact.public_id}"
    if not user_email_verified(request.user):
        messages.error(
            request,
            "Confirm your email address first: test messages go only to a confirmed address.",
        )
        return redirect(url)
    try:
        n = simulate.test_messages_send(
            tenant=request.tenant,
            journey=journey,
            version=state.version,
            contact=contact,
            to_user=request.user,
        )
    except simulate.TestSendRefused as exc:
        sent = f" ({exc.sent} went before it)" if exc.sent else ""
        messages.error(request, f"{exc.message}{sent}")
    else:
        messages.success(
            request,
            f"Sent {n} test email{'' if n == 1 else 's'} to {request.user.email}."
            if n
            else "This path sends no emails to try (web push goes to browsers, not to you).",
        )
    return redirect(url)
