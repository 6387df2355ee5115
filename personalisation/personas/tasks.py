"""Thin Celery adapter over persona_run_execute. Safe to run twice (a run is taken once)."""

from __future__ import annotations

from celery import shared_task

from personalisation.personas import selectors, services


@shared_task(name="personalisation.personas.tasks.persona_run_task", ignore_result=True)
def persona_run_task(tenant_id: int, run_id: str) -> None:
    """Cluster the team's contacts for the run `run_id` (a public id)."""
    found = selectors.run_for_worker(tenant_id=tenant_id, public_id=run_id)
    if found is not None:
        services.persona_run_execute(tenant=found.tenant, run=found)
