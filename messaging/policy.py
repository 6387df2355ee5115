"""What a message must pass before it leaves: reachability (the address or push subscription,
the suppression list, consent; messaging/reachability.py), the frequency cap, quiet hours and the
tenant's hourly limit.

`decide()` judges a claimed batch with a few queries whatever its size, and says for each
delivery: send, skip (with the reason, recorded on the contact) or defer (until when, and why).
Deferring is for rules that pass with time: quiet hours end, the next hour has room.
"""

from __future__ import annotations

import zoneinfo
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, F

from audience.models import Contact
from messaging.models import Category, Delivery, SendCounter, SendingPolicy
from messaging.reachability import reachability_load
from messaging.selectors import sending_policy_get
from tenants.models import Tenant


@dataclass(frozen=True)
class Verdict:
    action: str  # "send" | "skip" | "defer"
    reason: str = ""
    until: datetime | None = None


SEND = Verdict("send")


def _zone(contact: Contact, tenant: Tenant) -> zoneinfo.ZoneInfo:
    for name in (contact.timezone, tenant.timezone):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def quiet_until(policy: SendingPolicy, zone: zoneinfo.ZoneInfo, at: datetime) -> datetime | None:
    """The end of the quiet hours `at` falls in (aware, UTC-comparable), or None if not quiet.

    Wall-clock arithmetic in the contact's zone, so the end is 08:00 local on DST days too."""
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None or start == end:
        return None
    local = at.astimezone(zone)
    now_t = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 12:00-14:00, within one day
        quiet = start <= now_t < end
        end_day = local.date()
    else:  # e.g. 21:00-08:00, across midnight
        quiet = now_t >= start or now_t < end
        end_day = local.date() + timedelta(days=1) if now_t >= start else local.date()
    if not quiet:
        return None
    return _local(end_day, end, zone)


def _local(day: object, at: time, zone: zoneinfo.ZoneInfo) -> datetime:
    naive = datetime.combine(day, at)  # type: ignore[arg-type]
    aware = naive.replace(tzinfo=zone)
    # A wall time skipped by a DST jump (02:30 on spring-forward day) does not exist: zoneinfo
    # gives it the offset before the jump, so such an end falls an hour later (03:30).
    return aware


def decide(deliveries: list[Delivery], *, at: datetime) -> dict[int, Verdict]:
    """A verdict for each claimed delivery (contact and tenant loaded), by delivery pk."""
    verdicts: dict[int, Verdict] = {}
    by_tenant: dict[int, list[Delivery]] = {}
    for d in deliveries:
        by_tenant.setdefault(d.tenant_id, []).append(d)
    for group in by_tenant.values():
        verdicts.update(_decide_for_tenant(group, at=at))
    return verdicts


def _decide_for_tenant(deliveries: list[Delivery], *, at: datetime) -> dict[int, Verdict]:
    tenant = deliveries[0].tenant
    policy = sending_policy_get(tenant=tenant)
    verdicts: dict[int, Verdict] = {}
    reach = reachability_load(
        tenant=tenant,
        contacts=[d.contact for d in deliveries],
        channels={d.channel for d in deliveries},
        require_opt_in=policy.require_opt_in,
    )
    for d in deliveries:
        reason = reach.reason(d.contact, d.channel, d.category)
        verdicts[d.pk] = SEND if reason is None else Verdict("skip", reason)
    marketing = [
        d for d in deliveries if verdicts[d.pk] is SEND and d.category == Category.MARKETING
    ]
    # Quiet hours before the cap: a deferred message must not count against the contact now.
    for d in marketing:
        until = quiet_until(policy, _zone(d.contact, tenant), at)
        if until is not None:
            verdicts[d.pk] = Verdict("defer", f"quiet hours until {until:%H:%M} local", until)
    if policy.frequency_cap:
        capped = [d for d in marketing if verdicts[d.pk] is SEND]
        for d in _over_cap(policy, capped, at=at):
            verdicts[d.pk] = Verdict(
                "skip",
                f"frequency cap: {policy.frequency_cap} in {policy.frequency_window_hours} h",
            )
    if policy.hourly_limit:
        sending = [d for d in deliveries if verdicts[d.pk] is SEND]
        granted = _reserve(tenant, policy.hourly_limit, len(sending), at=at)
        next_hour = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        for d in sending[granted:]:
            verdicts[d.pk] = Verdict("defer", "hourly sending limit reached", next_hour)
    return verdicts


def _over_cap(policy: SendingPolicy, deliveries: list[Delivery], *, at: datetime) -> list[Delivery]:
    """The deliveries that would take their contact past the cap (in claim order)."""
    if not deliveries:
        return []
    since = at - timedelta(hours=policy.frequency_window_hours)
    sent = Counter(
        dict(
            Delivery.objects.filter(
                tenant_id=policy.tenant_id,
                contact_id__in={d.contact_id for d in deliveries},
                category=Category.MARKETING,
                status=Delivery.Status.SENT,
                sent_at__gte=since,
            )
            .values("contact_id")
            .annotate(n=Count("id"))
            .values_list("contact_id", "n")
        )
    )
    over = []
    for d in deliveries:
        if sent[d.contact_id] >= policy.frequency_cap:
            over.append(d)
        else:
            sent[d.contact_id] += 1
    return over


def _reserve(tenant: Tenant, limit: int, wanted: int, *, at: datetime) -> int:
    """Take up to `wanted` of this hour's sends for the tenant; returns how many were granted.
    One row per hour, incremented under its row lock, so concurrent workers share the limit."""
    if wanted == 0:
        return 0
    hour = at.replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():  # the sender runs in autocommit: the lock needs its own
        SendCounter.objects.get_or_create(tenant=tenant, hour=hour)
        counter = SendCounter.objects.select_for_update().get(tenant=tenant, hour=hour)
        granted = max(0, min(wanted, limit - counter.count))
        SendCounter.objects.filter(tenant=tenant, pk=counter.pk).update(count=F("count") + granted)
    return granted
