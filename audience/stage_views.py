"""The team's lifecycle stage rules: Settings → Lifecycle stages. Everyone reads them (with how
many contacts are in each stage); admins and owners change them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from audience import selectors, stages
from audience.forms import StageRulesForm
from audience.models import LifecycleStage
from tenants.decorators import TenantRequest


@require_http_methods(["GET", "POST"])
def lifecycle_settings(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    rules = selectors.stage_rules(tenant=tenant)
    form = StageRulesForm(instance=rules)
    if request.method == "POST":
        if not request.membership.can_manage:
            raise PermissionDenied("Changing the lifecycle stage rules needs the admin role.")
        form = StageRulesForm(request.POST, instance=rules)
        if form.is_valid():
            stages.stage_rules_save(tenant=tenant, rules=form.instance)
            messages.success(
                request,
                "Stage rules saved. Every contact is being re-evaluated by them; stages change"
                " within minutes.",
            )
            return redirect("lifecycle_settings", tenant_slug=tenant.slug)
        rules = selectors.stage_rules(tenant=tenant)  # what holds, not what was typed
    counts = selectors.lifecycle_stage_counts(tenant=tenant)
    ctx = {
        "form": form,
        "rules": rules,
        "tab": "lifecycle",
        "stages": [(value, label, counts[value]) for value, label in LifecycleStage.choices],
        "total": sum(counts.values()),
        "stage_changed": selectors.STAGE_CHANGED,
        "signed_up": stages.SIGNED_UP,
    }
    return render(
        request, "audience/lifecycle_settings.html", ctx, status=400 if form.errors else 200
    )
