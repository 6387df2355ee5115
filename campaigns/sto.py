"""Send-time optimisation: the hour of the day each contact most often opens or clicks.

From their own opens and clicks (email and push) of the last `LOOKBACK`, as a UTC hour 0-23;
a contact without any gets None, and the caller falls back to `team_best_hour` (the hour the
whole team's audience opens and clicks most), and without that to its own default.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, timedelta
from itertools import islice
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import ExtractHour
from django.utils.timezone import now

from audience.models import Event
from messaging.selectors import EMAIL_CLICKED, EMAIL_OPENED, PUSH_CLICKED  # outcome events' names
from tenants.models import Tenant

LOOKBACK = timedelta(days=90)
ENGAGED = (EMAIL_OPENED, EMAIL_CLICKED, PUSH_CLICKED)
CHUNK = 5_000  # contact ids per query: an IN list the planner handles well


def _engagement(tenant: Tenant) -> QuerySet[Any]:
    return Event.objects.filter(
        tenant=tenant, name__in=ENGAGED, occurred_at__gte=now() - LOOKBACK
    ).annotate(hour=ExtractHour("occurred_at", tzinfo=UTC))


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    it = iter(ids)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def best_hours(*, tenant: Tenant, contact_ids: Iterable[int]) -> dict[int, int | None]:
    """Each contact's best UTC hour (most opens and clicks; a tie goes to the earlier hour), or
    None without history. One GROUP BY (contact, hour) per `CHUNK` contacts, through the
    (tenant, contact, occurred_at) index."""
    found: dict[int, int | None] = {}
    for chunk in _chunks(contact_ids):
        best: dict[int, tuple[int, int]] = {}  # contact -> (count, hour)
        rows = (
            _engagement(tenant)
            .filter(contact_id__in=chunk)
            .values_list("contact_id", "hour")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for contact_id, hour, n in rows:
            seen = best.get(contact_id)
            if seen is None or (n, -hour) > (seen[0], -seen[1]):
                best[contact_id] = (n, hour)
        for contact_id in chunk:
            hit = best.get(contact_id)
            found[contact_id] = hit[1] if hit else None
    return found


def team_best_hour(*, tenant: Tenant) -> int | None:
    """The UTC hour the team's contacts open and click most (the earlier on a tie), or None
    when nobody has in the last `LOOKBACK`."""
    row = _engagement(tenant).values("hour").annotate(n=Count("pk")).order_by("-n", "hour").first()
    return None if row is None else int(row["hour"])
