"""Demo data never lies in the future (issue 18, item 2): `manage.py seed_demo` (every `make run`)
dates everything it makes at or before the moment of seeding, spread over the past half year and
dense lately; contacts are first seen no later than last seen; "Cart abandoners" (added to cart in
the last 24 hours) holds people who really carted then; a real event recorded afterwards is the
newest on the timeline; and seeding again adds nothing in the future either."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Max, Min, Q
from django.utils.timezone import now

from audience.models import Contact, Event, Order
from audience.segment_spec import parse_call
from audience.services import calls_record
from messaging.models import Delivery
from ops.demo import DEMO_EMAIL, seed_demo
from segments.models import Segment
from segments.selectors import rules_count, segment_members
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

# Fields that say when something is planned to happen, not when it happened: the only ones a
# seed may set after its own moment (each checked below to belong to something still to come).
PLANNED = {
    ("journeys.Enrollment", "due_at"),  # a shopper waiting at a journey's wait step
    ("campaigns.Campaign", "send_at"),  # the weekly digest's next Monday
    ("campaigns.Campaign", "local_date"),  # the draft launch's planned day
}


def _dated_fields() -> list[tuple[type[models.Model], models.DateField, str]]:
    """(model, date or datetime field, the model's foreign key to its tenant) for every tenant
    table."""
    found = []
    for model in apps.get_models():
        tenant_fk = next(
            (
                f.name
                for f in model._meta.concrete_fields
                if isinstance(f, models.ForeignKey) and f.related_model is Tenant
            ),
            None,
        )
        if tenant_fk is None:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, models.DateField):  # DateTimeField is a DateField too
                found.append((model, field, tenant_fk))
    return found


def _future(tenant: Tenant, moment: datetime) -> dict[tuple[str, str], int]:
    """{(model, field): rows of `tenant` dated after `moment`} (days: after its day in UTC and in
    the team's zone, whichever is later)."""
    day = max(moment.date(), moment.astimezone(ZoneInfo(tenant.timezone)).date())
    out = {}
    for model, field, tenant_fk in _dated_fields():
        limit = moment if isinstance(field, models.DateTimeField) else day
        rows = model._base_manager.filter(**{tenant_fk: tenant, f"{field.name}__gt": limit}).count()
        if rows:
            out[(model._meta.label, field.name)] = rows
    return out


def _timeline(client, contact: Contact) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(datetime attribute, event name) of the timeline's first page, top to bottom."""
    page = client.get(f"/t/{contact.tenant.slug}/contacts/{contact.public_id}/timeline/")
    assert page.status_code == 200
    return re.findall(
        r'<time datetime="([^"]+)"[^>]*>[^<]*</time>\s*<strong>([^<]*)</strong>',
        page.content.decode(),
    )


def test_seeded_demo_data_lies_in_the_past_and_a_real_event_is_the_newest(client: Any) -> None:
    started = now()
    tenant = seed_demo()
    seeded = now()

    # The tables a marketer sees dates of are among those checked, and hold seeded rows.
    checked = {(m._meta.label, f.name) for m, f, _ in _dated_fields()}
    assert {
        ("audience.Event", "occurred_at"),
        ("audience.Contact", "created_at"),
        ("audience.Contact", "last_seen_at"),
        ("audience.Order", "occurred_at"),
        ("messaging.Delivery", "created_at"),
        ("messaging.Delivery", "sent_at"),
    } <= checked
    assert Order.objects.filter(tenant=tenant).exists()
    assert Delivery.objects.filter(tenant=tenant, sent_at__isnull=False).exists()

    # Nothing happened after the seeding: only plans (a wait, the digest, the draft) lie ahead.
    future = _future(tenant, seeded)
    assert set(future) <= PLANNED, future
    from campaigns.models import Campaign
    from journeys.models import Enrollment

    ahead = Campaign.objects.filter(tenant=tenant).filter(
        Q(send_at__gt=seeded) | Q(local_date__gt=seeded.date())
    )
    assert set(ahead.values_list("state", flat=True)) <= {"scheduled", "draft"}
    waiting = Enrollment.objects.filter(tenant=tenant, due_at__gt=seeded)
    assert set(waiting.values_list("state", flat=True)) <= {"waiting", "active"}

    # The shop's own history (the shoppers' clicks) ends before the seeding started, and spreads
    # over half a year: some shoppers seen in the last 24 hours, others months ago, shop
    # activity on each of the last 14 days.
    shop = Event.objects.filter(tenant=tenant, source="demo")
    span = shop.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    assert started - timedelta(days=181) <= span["first"] < span["last"] <= started
    contacts = Contact.objects.filter(tenant=tenant)
    assert contacts.filter(last_seen_at__gt=started - timedelta(days=1)).count() >= 20
    assert contacts.filter(last_seen_at__lt=started - timedelta(days=90)).count() >= 100
    days = {
        (started - at).days
        for at in shop.filter(occurred_at__gt=started - timedelta(days=14)).values_list(
            "occurred_at", flat=True
        )
    }
    assert days == set(range(14))

    # First seen ≤ first event ≤ last seen ≤ the seeding, for every contact.
    rows = contacts.annotate(first_event=Min("events__occurred_at")).values_list(
        "created_at", "first_event", "last_seen_at"
    )
    assert len(rows) == contacts.count() >= 1000
    for created, first_event, last_seen in rows:
        assert last_seen is not None
        assert created <= first_event <= last_seen <= seeded, (created, first_event, last_seen)
    # Not everyone first seen at the moment of seeding, as if all had signed up today.
    assert contacts.filter(created_at__lt=started - timedelta(days=30)).count() >= 500

    # "Cart abandoners": everyone in it added to their cart in the last 24 hours, truly.
    segment = Segment.objects.get(tenant=tenant, name="Cart abandoners")
    members = list(segment_members(tenant=tenant, segment=segment))
    assert len(members) >= 10
    assert rules_count(tenant=tenant, rules=segment.rules) == len(members)
    for contact in members:
        carted = Event.objects.filter(tenant=tenant, contact=contact, name="Product Added")
        at = carted.aggregate(last=Max("occurred_at"))["last"]
        assert at is not None and seeded - timedelta(days=1) < at <= seeded, (contact.pk, at)

    # Seeding again (every `make run`) adds nothing, in the future or at all.
    events = Event.objects.filter(tenant=tenant).count()
    assert seed_demo() == tenant
    again = now()
    assert set(_future(tenant, again)) <= PLANNED
    assert Event.objects.filter(tenant=tenant).count() == events

    # The contacts page says how long ago each was last seen: never "0 minutes ago".
    demo_user = get_user_model().objects.get(email=DEMO_EMAIL)
    client.force_login(demo_user)
    page = client.get(f"/t/{tenant.slug}/contacts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert " ago" in html and not re.search(r"\b0\s+minutes ago", html)

    # A real event now is the newest on the timeline of the contact with the newest seeded
    # event of all (a stage change, a message outcome, a journey's order…).
    newest = Event.objects.filter(tenant=tenant).order_by("-occurred_at", "-pk").first()
    assert newest is not None
    contact = newest.contact
    before = _timeline(client, contact)
    assert before and before[0][1] == newest.name
    ids = {"userId": contact.user_id} if contact.user_id else {}
    if not ids:
        anonymous = contact.identities.filter(kind="anonymous_id").first()
        assert anonymous is not None
        ids = {"anonymousId": anonymous.value}
    real = {"type": "track", "event": "Store Visited", "messageId": "real-1", **ids}
    calls_record(tenant=tenant, calls=[parse_call(real)])
    after = _timeline(client, contact)
    assert after[0][1] == "Store Visited"
    assert after[1:] == before[: len(after) - 1]
