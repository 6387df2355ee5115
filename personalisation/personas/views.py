"""Audience → Personas: run a clustering of the team's contacts and read the personas it found.

Every member reads; marketers run and save personas as segments. While a run is queued or running
its panel polls itself with htmx (every POLL_SECONDS) and turns into the results when it ends;
without JavaScript the page says to reload. Forms work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.forms import add_service_errors
from personalisation.personas import selectors, services
from personalisation.personas.forms import PersonaRunForm, PersonaSaveForm
from personalisation.personas.models import PersonaRun
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

POLL_SECONDS = 2
HISTORY = 10


def _context(
    request: TenantRequest,
    run: PersonaRun | None,
    *,
    form: PersonaRunForm | None = None,
    save_forms: dict[int, PersonaSaveForm] | None = None,
) -> dict[str, Any]:
    forms_by_index = save_forms or {}
    personas = []
    if run is not None and run.status == PersonaRun.Status.DONE:
        for cluster in run.clusters:
            personas.append(
                {
                    **cluster,
                    "save_form": forms_by_index.get(cluster["index"]) or PersonaSaveForm(),
                    "captured_pct": round(cluster["capture"]["captured"] * 100),
                    "share_pct": round(cluster["share"] * 100),
                    "buyers_pct": round(cluster["figures"]["buyers"] * 100),
                    "open_rate_pct": None
                    if cluster["figures"]["open_rate"] is None
                    else round(cluster["figures"]["open_rate"] * 100),
                    "segment_captured_pct": round(cluster["segment"]["captured"] * 100)
                    if cluster.get("segment")
                    else None,
                }
            )
    return {
        "run": run,
        "personas": personas,
        "sampled": run is not None and 0 < run.sample_size < run.contacts_total,
        "poll": POLL_SECONDS if run is not None and run.in_progress else None,
        "form": form or PersonaRunForm(),
        "history": list(selectors.run_list(tenant=request.tenant)[:HISTORY]),
        "tab": "personas",
    }


def _page(request: TenantRequest, run: PersonaRun | None, **kwargs: Any) -> HttpResponse:
    ctx = _context(request, run, **kwargs)
    if request.htmx and request.htmx.target == "persona-run":
        ctx["oob"] = True
        return render(request, "personalisation/personas/persona_list.html#run_panel", ctx)
    return render(request, "personalisation/personas/persona_list.html", ctx)


@require_GET
def persona_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _page(request, selectors.run_latest(tenant=request.tenant))


@require_GET
def persona_run_detail(request: TenantRequest, tenant_slug: str, run_id: str) -> HttpResponse:
    return _page(request, selectors.run_get(tenant=request.tenant, public_id=run_id))


@require_POST
@role_required(Role.MARKETER)
def persona_run_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = PersonaRunForm(request.POST)
    if form.is_valid():
        try:
            run = services.persona_run_request(
                tenant=request.tenant, user=request.user, k=form.cleaned_data["k"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("persona_run_detail", request.tenant.slug, run.public_id)
    latest = selectors.run_latest(tenant=request.tenant)
    response = render(
        request, "personalisation/personas/persona_list.html", _context(request, latest, form=form)
    )
    response.status_code = 400
    return response


@require_POST
@role_required(Role.MARKETER)
def persona_save(request: TenantRequest, tenant_slug: str, run_id: str, index: int) -> HttpResponse:
    run = selectors.run_get(tenant=request.tenant, public_id=run_id)
    form = PersonaSaveForm(request.POST)
    if form.is_valid():
        try:
            segment = services.persona_segment_save(
                tenant=request.tenant, run=run, index=index, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved as the segment “{segment.name}”.")
            url = reverse("persona_run_detail", args=[request.tenant.slug, run.public_id])
            return redirect(f"{url}#persona-{index}")
    response = _page(request, run, save_forms={index: form})
    response.status_code = 400
    return response
