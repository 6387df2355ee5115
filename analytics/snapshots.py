"""The nightly stage snapshots (analytics.models.StageSnapshot): each team's contacts per
lifecycle stage at the end of its local day, for the churn and retention charts."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction

from analytics.models import StageSnapshot
from analytics.selectors import today
from tenants.models import Tenant


def stage_snapshot_take(
    *, tenant: Tenant, now: datetime | None = None, day: date | None = None
) -> date:
    """Write the team's stage counts as the snapshot of its local today (rewritten until the
    day ends, so the last write of a day is its end-of-day count), or of `day`. Returns the
    day."""
    from audience import selectors as audience_selectors

    day = day or today(tenant, now=now)
    counter = getattr(audience_selectors, "lifecycle_stage_counts", None)
    if counter is not None:
        counts = dict(counter(tenant=tenant))
    else:  # until audience provides it: the direct count
        from django.db.models import Count

        from audience.models import Contact

        counts = {
            row["lifecycle_stage"]: row["n"]
            for row in Contact.objects.filter(tenant=tenant)
            .values("lifecycle_stage")
            .annotate(n=Count("pk"))
            .order_by()
        }
    with transaction.atomic():
        for stage, contacts in counts.items():
            StageSnapshot.objects.update_or_create(
                tenant=tenant, day=day, stage=stage, defaults={"contacts": contacts}
            )
        StageSnapshot.objects.filter(tenant=tenant, day=day).exclude(
            stage__in=list(counts)
        ).delete()
    return day
