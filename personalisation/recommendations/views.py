"""Personalisation → Recommendations: the report of served recommendations, their clicks and
the orders and revenue the clicks brought, per placement and strategy, over 7, 30 or 90 days.
Every member of the team reads it."""

from __future__ import annotations

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from personalisation.recommendations import selectors
from tenants.decorators import TenantRequest

DEFAULT_DAYS = 30


class ReportPeriodForm(forms.Form):
    days = forms.ChoiceField(
        choices=[(str(d), f"{d} days") for d in selectors.PERIODS], required=False
    )


@require_GET
def recommendation_report(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = ReportPeriodForm(request.GET)
    days = int(form.cleaned_data["days"] or DEFAULT_DAYS) if form.is_valid() else DEFAULT_DAYS
    report = selectors.recommendation_report(tenant=request.tenant, days=days)
    context = {
        "form": form,
        "report": report,
        "periods": selectors.PERIODS,
        "attribution_days": selectors.ATTRIBUTION_DAYS,
        "tab": "recommendations",
    }
    return render(
        request,
        "personalisation/recommendations/report.html",
        context,
        status=200 if form.is_valid() else 400,
    )
