"""Reads for personas, with the gatekeeper: another team's run is a 404, like an unknown one."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from core.ids import uuid_or_404
from personalisation.personas.models import PersonaRun
from tenants.models import Tenant


def run_get(*, tenant: Tenant, public_id: object) -> PersonaRun:
    """The team's run, or 404. Its `members` (up to 50,000 ids) are read only when used (saving
    a persona), not on every poll of the page."""
    found = (
        PersonaRun.objects.filter(
            tenant=tenant, public_id=uuid_or_404(public_id, what="persona run")
        )
        .defer("members")
        .first()
    )
    if found is None:
        raise Http404("No such persona run")
    return found


def run_list(*, tenant: Tenant) -> QuerySet[PersonaRun]:
    """The team's runs, newest first (without the members lists, which no list shows)."""
    return PersonaRun.objects.filter(tenant=tenant).defer("members").order_by("-created_at", "-pk")


def run_latest(*, tenant: Tenant) -> PersonaRun | None:
    return run_list(tenant=tenant).first()


def run_for_worker(*, tenant_id: int, public_id: str) -> PersonaRun | None:
    """The run a task names (None when it was deleted meanwhile), with its team."""
    return (
        PersonaRun.objects.filter(tenant_id=tenant_id, public_id=public_id)
        .select_related("tenant")
        .first()
    )
