"""Personalisation → Search: what shoppers searched for (top queries, queries that found
nothing), a try-it box that searches as a given contact would see it, and the synonyms editor.

Every member reads and may try searches; marketers and up add, change and delete synonyms.
Forms work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audience.selectors import contact_find
from core.forms import add_service_errors
from personalisation.search import selectors, services
from personalisation.search.forms import SynonymForm, TryItForm
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30


def _days(request: TenantRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS
    return days if days in PERIODS else DEFAULT_DAYS


def _try_it(request: TenantRequest) -> dict[str, Any]:
    """The try-it box's form and, once asked, its answer (not counted, not recorded)."""
    if "q" not in request.GET:
        return {"try_form": TryItForm(), "answer": None}
    form = TryItForm(request.GET)
    if not form.is_valid():
        return {"try_form": form, "answer": None}
    contact = None
    if who := form.cleaned_data["contact"]:
        # An email address or a user id, each by its index (audience's look-up).
        contact = contact_find(
            tenant=request.tenant,
            email=who if "@" in who else "",
            user_id="" if "@" in who else who,
        )
        if contact is None:
            form.add_error("contact", "No contact with this email or user id.")
            return {"try_form": form, "answer": None}
    answer = services.search_run(
        tenant=request.tenant,
        query=form.cleaned_data["q"],
        limit=form.cleaned_data["limit"],
        category=form.cleaned_data["category"],
        contact=contact,
        record=False,
    )
    return {"try_form": form, "answer": answer, "try_contact": contact}


def _page(
    request: TenantRequest, *, synonym_form: SynonymForm | None = None, status: int = 200
) -> HttpResponse:
    days = _days(request)
    ctx: dict[str, Any] = {
        "days": days,
        "periods": PERIODS,
        "totals": selectors.search_totals(tenant=request.tenant, days=days),
        "top_queries": selectors.query_figures(tenant=request.tenant, days=days),
        "zero_queries": selectors.query_figures(tenant=request.tenant, days=days, zero_only=True),
        "synonyms": selectors.synonym_list(tenant=request.tenant),
        "synonym_form": synonym_form
        or SynonymForm(initial={"term": request.GET.get("term", "")[:100]}),
        **_try_it(request),
    }
    return render(request, "personalisation/search/insights.html", ctx, status=status)


@require_GET
def search_insights(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _page(request)


@require_POST
@role_required(Role.MARKETER)
def search_synonym_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = SynonymForm(request.POST)
    if form.is_valid():
        try:
            synonym = services.synonyms_set(tenant=request.tenant, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            found = ", ".join(synonym.alternatives)
            messages.success(request, f"Searches for “{synonym.term}” now also find {found}.")
            return redirect("search_insights", tenant_slug)
    return _page(request, synonym_form=form)


@require_http_methods(["GET", "POST"])
def search_synonym_edit(request: TenantRequest, tenant_slug: str, synonym_id: str) -> HttpResponse:
    synonym = selectors.synonym_get(tenant=request.tenant, public_id=synonym_id)
    if request.method == "POST":
        if not request.membership.can_edit:
            raise PermissionDenied("This needs the marketer role or higher.")
        form = SynonymForm(request.POST)
        if form.is_valid():
            try:
                services.synonym_update(synonym=synonym, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "The synonym is saved.")
                return redirect("search_insights", tenant_slug)
        status = 200
    else:
        form = SynonymForm(initial=SynonymForm.initial_for(synonym.term, synonym.alternatives))
        status = 200
    if not request.membership.can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "personalisation/search/synonym_form.html",
        {"form": form, "synonym": synonym},
        status=status,
    )


@require_POST
@role_required(Role.MARKETER)
def search_synonym_delete(
    request: TenantRequest, tenant_slug: str, synonym_id: str
) -> HttpResponse:
    synonym = selectors.synonym_get(tenant=request.tenant, public_id=synonym_id)
    services.synonym_delete(synonym=synonym)
    messages.success(request, f"The synonym for “{synonym.term}” is deleted.")
    return redirect("search_insights", tenant_slug)
