"""Personalisation → Surveys: the team's surveys, their form and their results.

Every member reads (list, results, the form shown read-only); marketers and up create and
change. The results page reads a period (30, 90, 365 days or all time) from `?days=`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from personalisation.surveys import selectors, services
from personalisation.surveys.forms import SurveyForm
from personalisation.surveys.models import Survey, SurveyKind
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

PERIODS = {"30": 30, "90": 90, "365": 365, "all": None}
DEFAULT_PERIOD = "90"
TAB = "surveys"


@require_GET
def survey_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    surveys = list(selectors.survey_list(tenant=request.tenant))
    return render(
        request, "personalisation/surveys/survey_list.html", {"surveys": surveys, "tab": TAB}
    )


def _form(request: TenantRequest, survey: Survey | None) -> SurveyForm:
    """The survey form; read-only for viewers (POST is refused to them)."""
    if request.method == "POST" and not request.membership.can_edit:
        raise PermissionDenied("This needs the marketer role or higher.")
    initial = SurveyForm.initial_for(survey) if survey else None
    form = SurveyForm(request.POST or None, initial=initial, survey=survey)
    if not request.membership.can_edit:
        for field in form.fields.values():
            field.disabled = True
    return form


def _save(request: TenantRequest, form: SurveyForm, survey: Survey | None) -> Survey | None:
    data = form.cleaned_data
    kind = survey.kind if survey else data["kind"]
    questions = form.questions() if kind == SurveyKind.SHORT else []
    fields: dict[str, Any] = {
        "name": data["name"],
        "question": data["question"],
        "thanks": data["thanks"],
        "key": data["key"],
        "active": data["active"],
    }
    if kind == SurveyKind.SHORT:
        fields["questions"] = [{k: v for k, v in q.items() if k != "_slot"} for q in questions]
    try:
        if survey is None:
            return services.survey_create(tenant=request.tenant, kind=kind, **fields)
        return services.survey_update(tenant=request.tenant, survey=survey, **fields)
    except ValidationError as exc:
        form.service_errors(exc, questions)
        return None


def _form_page(request: TenantRequest, form: SurveyForm, survey: Survey | None) -> HttpResponse:
    return render(
        request,
        "personalisation/surveys/survey_form.html",
        {"form": form, "survey": survey, "tab": TAB},
        status=400 if form.is_bound and form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def survey_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = _form(request, None)
    if request.method == "POST" and form.is_valid():
        survey = _save(request, form, None)
        if survey is not None:
            messages.success(request, f"The survey “{survey.name}” is saved.")
            return redirect("survey_detail", tenant_slug, survey.public_id)
    return _form_page(request, form, None)


@require_http_methods(["GET", "POST"])
def survey_edit(request: TenantRequest, tenant_slug: str, survey_id: str) -> HttpResponse:
    survey = selectors.survey_get(tenant=request.tenant, public_id=survey_id)
    form = _form(request, survey)
    if request.method == "POST" and form.is_valid():
        saved = _save(request, form, survey)
        if saved is not None:
            messages.success(request, "The survey is saved.")
            return redirect("survey_detail", tenant_slug, survey.public_id)
    return _form_page(request, form, survey)


@require_GET
def survey_detail(request: TenantRequest, tenant_slug: str, survey_id: str) -> HttpResponse:
    """The results page."""
    survey = selectors.survey_get(tenant=request.tenant, public_id=survey_id)
    period = request.GET.get("days", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    results = selectors.survey_results(tenant=request.tenant, survey=survey, days=PERIODS[period])
    return render(
        request,
        "personalisation/surveys/survey_detail.html",
        {
            "survey": survey,
            "results": results,
            "period": period,
            "periods": [
                ("30", "30 days"),
                ("90", "90 days"),
                ("365", "A year"),
                ("all", "All time"),
            ],
            "tab": TAB,
        },
    )


@require_POST
@role_required(Role.MARKETER)
def survey_delete(request: TenantRequest, tenant_slug: str, survey_id: str) -> HttpResponse:
    survey = selectors.survey_get(tenant=request.tenant, public_id=survey_id)
    services.survey_delete(tenant=request.tenant, survey=survey)
    messages.success(request, f"The survey “{survey.name}” and its answers are deleted.")
    return redirect("survey_list", tenant_slug)
