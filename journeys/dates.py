"""Date triggers: a birthday or another yearly date (a custom attribute) at a local time, offset
by some days; each occurrence enrolls a contact once (`context["occurrence"]`)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from journeys.kinds.triggers import parse_time
from journeys.kinds.waits import local_moment, zone_of
from journeys.models import Journey, JourneyVersion

if TYPE_CHECKING:
    pass

from journeys.engine import advance_due, graphs_load
from journeys.entry import enter

log = logging.getLogger(__name__)

DATE_LOOKBACK = timedelta(hours=36)  # a date trigger whose moment passed this long ago is missed

# --- date triggers ---------------------------------------------------------------------------


def _anniversary(raw: object) -> tuple[int, int] | None:
    """(month, day) of a custom date attribute ("YYYY-MM-DD", or "MM-DD")."""
    text = str(raw or "").strip()[:10]
    try:
        if len(text) == 10:
            parsed = date.fromisoformat(text)
            return parsed.month, parsed.day
        month, day = (int(p) for p in text.split("-"))
        date(2000, month, day)
        return month, day
    except ValueError:
        return None


def _occurs_on(month: int, day: int, on: date) -> bool:
    """Whether a yearly (month, day) falls on `on` (29 February on the 28th in other years)."""
    if (on.month, on.day) == (month, day):
        return True
    leap = on.year % 4 == 0 and (on.year % 100 != 0 or on.year % 400 == 0)
    return (month, day) == (2, 29) and not leap and (on.month, on.day) == (2, 28)


def date_triggers_scan(*, now: datetime | None = None) -> int:
    """Enter contacts whose date moment (their birthday, or a custom date attribute, offset by
    some days, at a local time) has passed since the last scans, once per date: the date is
    the enrollment's `occurrence`, so scanning again enrolls no one twice. Returns how many."""
    from audience.models import Contact

    now = now or timezone.now()
    started = 0
    graph_ids = JourneyVersion.objects.filter(
        state=JourneyVersion.State.PUBLISHED,
        journey__status=Journey.Status.LIVE,
        trigger_kind="trigger_date",
    ).values_list("pk", flat=True)
    for graph in graphs_load(graph_ids).values():
        trigger = graph.trigger
        if trigger is None:
            continue
        version = graph.version
        s = trigger.settings
        since = max(now - DATE_LOOKBACK, version.published_at or now - DATE_LOOKBACK)
        offset = timedelta(days=int(s.get("offset_days") or 0))
        at = parse_time(s.get("at") or "09:00")
        attribute = s.get("attribute") or "birthday"
        # Local dates anywhere on earth between `since` and now (zones span -12 h to +14 h).
        days = [
            since.date() + timedelta(days=i)
            for i in range(-1, (now.date() - since.date()).days + 2)
        ]
        anniversaries = {((d - offset).month, (d - offset).day) for d in days}
        if (2, 28) in anniversaries:
            anniversaries.add((2, 29))
        contacts = Contact.objects.filter(tenant_id=version.tenant_id)
        if attribute == "birthday":
            q = Q()
            for month, mday in anniversaries:
                q |= Q(birthday_month=month, birthday_day=mday)
            contacts = contacts.filter(q)
        else:
            contacts = contacts.filter(attributes__has_key=attribute)
        due: list[tuple[int, date]] = []
        for contact in contacts.only(
            "pk", "timezone", "birthday_month", "birthday_day", "attributes"
        ):
            if attribute == "birthday":
                yearly = (contact.birthday_month or 0, contact.birthday_day or 0)
            else:
                found = _anniversary((contact.attributes or {}).get(attribute))
                if found is None:
                    continue
                yearly = found
            zone = zone_of(contact, version.tenant)
            for day in days:
                if not _occurs_on(*yearly, day - offset):
                    continue
                moment = local_moment(day, at, zone)
                if since < moment <= now:
                    due.append((contact.pk, day))
        for contact_id, day in due:
            with transaction.atomic():
                enrollment = enter(
                    graph=graph,
                    contact_id=contact_id,
                    context={"data": {"date": day.isoformat()}},
                    now=now,
                    occurrence=f"{attribute}:{day.isoformat()}",
                )
            if enrollment is not None:
                started += 1
    if started:
        advance_due(now=now)
    return started
