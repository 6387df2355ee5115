"""Search's background work: bringing a team's index up to its catalog when too many products
changed for a search to do it itself (lexicon.lexicon_ensure enqueues it)."""

from __future__ import annotations

from celery import shared_task

from personalisation.search import lexicon
from tenants.models import Tenant


@shared_task(ignore_result=True)
def search_index_refresh(tenant_id: int) -> None:
    # Safe to run twice: the second finds nothing changed since the first's mark (or waits for
    # its lock and then finds so).
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        lexicon.lexicon_refresh(tenant=tenant)
