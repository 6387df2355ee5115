"""Lifecycle stage rules on hand-made histories (audience/stages.py, docs/lifecycle.md): each
rule, each precedence, each boundary, with the clock stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from audience.models import Contact, Event, LifecycleStage, StageRules
from audience.services import Fact, events_record
from audience.stages import STAGE_CHANGED, stages_compute, stages_refresh

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
S = LifecycleStage


def contact(world: Any, *, tenant: Any = None, **fields: Any) -> Contact:
    return Contact.objects.create(tenant=tenant or world.acme, **fields)


def did(world: Any, who: Contact, name: str, ago: timedelta, **properties: Any) -> None:
    """`who` did `name` `ago` before NOW (an order becomes a ledger row, as on ingestion)."""
    when = NOW - ago
    events_record(
        tenant=who.tenant,
        facts=[Fact(who.pk, name, f"{name}@{when.isoformat()}", "test", properties, when)],
    )
    if who.last_seen_at is None or when > who.last_seen_at:
        who.last_seen_at = when
        Contact.objects.filter(pk=who.pk).update(last_seen_at=when)


def stage(who: Contact, at: datetime = NOW) -> tuple[str, str]:
    return stages_compute(tenant=who.tenant, contact_ids=[who.pk], at=at)[who.pk]


# --- each rule ------------------------------------------------------------------------------


def test_it_keeps_an_anonymous_visitor_in_awareness(world) -> None:
    visitor = contact(world, last_seen_at=NOW - DAY)
    assert stage(visitor) == (S.AWARENESS, "anonymous")


@pytest.mark.parametrize("known", [{"user_id": "u-1"}, {"email": "ann@example.com"}])
def test_it_puts_an_identified_lead_in_acquisition(world, known) -> None:
    assert stage(contact(world, **known)) == (S.ACQUISITION, "identified")


def test_it_onboards_a_first_order_for_30_days(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 29 * DAY, total=10)
    assert stage(ann) == (S.ONBOARDING, "first_order")
    # The boundary: under 30 times 24 h, still onboarding; at 30 days, an active buyer.
    assert stage(ann, NOW + DAY - timedelta(seconds=1)) == (S.ONBOARDING, "first_order")
    assert stage(ann, NOW + DAY) == (S.ENGAGEMENT, "active_buyer")


def test_it_onboards_a_sign_up_for_30_days(world) -> None:
    ann = contact(world, user_id="u-1")
    did(world, ann, "Signed Up", 10 * DAY)
    assert stage(ann) == (S.ONBOARDING, "signed_up")
    assert stage(ann, NOW + 20 * DAY - timedelta(seconds=1)) == (S.ONBOARDING, "signed_up")
    # A sign-up without an order is a known lead once its onboarding is over.
    assert stage(ann, NOW + 20 * DAY) == (S.ACQUISITION, "identified")


def test_it_counts_only_a_first_order_for_onboarding(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 200 * DAY)
    did(world, ann, "Order Completed", 2 * DAY)
    assert stage(ann) == (S.ENGAGEMENT, "active_buyer")


def test_it_calls_a_buyer_with_no_order_in_90_days_a_retention_risk(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 200 * DAY)
    did(world, ann, "Order Completed", 89 * DAY)
    did(world, ann, "Product Viewed", 1 * DAY)  # still browsing: not drifting
    assert stage(ann) == (S.ENGAGEMENT, "active_buyer")
    assert stage(ann, NOW + DAY) == (S.RETENTION, "no_recent_order")


def test_it_calls_a_buyer_not_seen_for_60_days_drifting(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 40 * DAY)  # seen last then
    assert stage(ann) == (S.ENGAGEMENT, "active_buyer")
    assert stage(ann, NOW + 20 * DAY - timedelta(seconds=1)) == (S.ENGAGEMENT, "active_buyer")
    assert stage(ann, NOW + 20 * DAY) == (S.RETENTION, "inactive")


def test_it_never_calls_someone_who_never_bought_drifting(world) -> None:
    lead = contact(world, email="lead@example.com", last_seen_at=NOW - 400 * DAY)
    assert stage(lead) == (S.ACQUISITION, "identified")


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (9, (S.ADVOCACY, "promoter")),
        (10, (S.ADVOCACY, "promoter")),
        (9.5, (S.ADVOCACY, "promoter")),
        (8, (S.ACQUISITION, "identified")),
        ("10", (S.ACQUISITION, "identified")),  # text is no score
        (True, (S.ACQUISITION, "identified")),
        (None, (S.ACQUISITION, "identified")),
    ],
)
def test_it_makes_a_promoter_an_advocate(world, score, expected) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "NPS Submitted", 3 * DAY, score=score)
    assert stage(ann) == expected


def test_it_reads_the_latest_nps_answer(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "NPS Submitted", 20 * DAY, score=10)
    did(world, ann, "Survey Answered", 3 * DAY, score=4)
    assert stage(ann) == (S.ACQUISITION, "identified")


@pytest.mark.parametrize("name", ["Product Reviewed", "Product Shared", "Referral Sent"])
def test_it_makes_a_reviewer_or_referrer_an_advocate_for_180_days(world, name) -> None:
    ann = contact(world, user_id="u-1")
    did(world, ann, name, 170 * DAY)
    assert stage(ann) == (S.ADVOCACY, "advocate")
    assert stage(ann, NOW + 10 * DAY - timedelta(seconds=1)) == (S.ADVOCACY, "advocate")
    assert stage(ann, NOW + 10 * DAY) == (S.ACQUISITION, "identified")


# --- precedence -----------------------------------------------------------------------------


def test_drifting_beats_advocacy(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 100 * DAY)
    did(world, ann, "Product Reviewed", 70 * DAY)  # the last time ann was seen
    assert stage(ann) == (S.RETENTION, "inactive")


def test_advocacy_beats_onboarding_and_onboarding_beats_engagement(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 5 * DAY)
    assert stage(ann) == (S.ONBOARDING, "first_order")  # also an active buyer
    did(world, ann, "Referral Sent", 1 * DAY)
    assert stage(ann) == (S.ADVOCACY, "advocate")


def test_engagement_beats_acquisition_and_acquisition_beats_awareness(world) -> None:
    guest = contact(world)  # a guest checkout: a buyer nobody knows by name
    did(world, guest, "Order Completed", 60 * DAY - timedelta(seconds=1))
    did(world, guest, "Order Completed", 45 * DAY)
    assert stage(guest) == (S.ENGAGEMENT, "active_buyer")
    assert stage(contact(world)) == (S.AWARENESS, "anonymous")
    known = contact(world, user_id="u-9")
    did(world, known, "Product Viewed", 1 * DAY)
    assert stage(known) == (S.ACQUISITION, "identified")


# --- the team's own rules -------------------------------------------------------------------


def test_it_applies_the_teams_own_rules(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 10 * DAY)
    did(world, ann, "Loved It", 2 * DAY, rating=3)
    did(world, ann, "Rated Us", 1 * DAY, score=7)
    assert stage(ann) == (S.ONBOARDING, "first_order")
    StageRules.objects.create(
        tenant=world.acme,
        onboarding_days=7,
        active_days=9,
        drifting_days=30,
        advocacy_days=5,
        promoter_min_score=7,
        nps_events=["Rated Us"],
        advocacy_events=[],
    )
    assert stage(ann) == (S.ADVOCACY, "promoter")
    StageRules.objects.filter(tenant=world.acme).update(promoter_min_score=8)
    assert stage(ann) == (S.RETENTION, "no_recent_order")
    StageRules.objects.filter(tenant=world.acme).update(advocacy_events=["Loved It"])
    assert stage(ann) == (S.ADVOCACY, "advocate")
    # No names at all: no advocacy.
    StageRules.objects.filter(tenant=world.acme).update(
        nps_events=[], advocacy_events=[], promoter_min_score=0
    )
    assert stage(ann) == (S.RETENTION, "no_recent_order")
    # Another team keeps the defaults.
    bob = contact(world, tenant=world.globex, email="bob@example.com")
    did(world, bob, "Rated Us", 1 * DAY, score=10)
    assert stage(bob) == (S.ACQUISITION, "identified")


# --- time: daylight saving --------------------------------------------------------------------


def test_a_day_is_24_hours_across_a_daylight_saving_change(world) -> None:
    # Europe's clocks went forward on 29 March 2026: 30 days after 15 March 12:00 UTC is
    # 14 April 12:00 UTC, whatever the team's local clock said in between.
    world.acme.timezone = "Europe/Paris"
    world.acme.save()
    ann = contact(world, email="ann@example.com")
    first = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
    did(world, ann, "Order Completed", NOW - first)
    end = first + 30 * DAY
    assert stage(ann, end - timedelta(seconds=1)) == (S.ONBOARDING, "first_order")
    assert stage(ann, end) == (S.ENGAGEMENT, "active_buyer")


# --- changes are events, once -----------------------------------------------------------------


def changed_events(who: Contact) -> list[dict[str, Any]]:
    return list(
        Event.objects.filter(tenant=who.tenant, contact=who, name=STAGE_CHANGED)
        .order_by("occurred_at", "id")
        .values_list("properties", flat=True)
    )


def test_it_records_each_change_once_and_a_rerun_records_nothing(world) -> None:
    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 5 * DAY)
    with time_machine.travel(NOW, tick=False):
        changes = stages_refresh(tenant=world.acme)
        assert [(c.old, c.new, c.reason) for c in changes] == [
            ("awareness", "onboarding", "first_order")
        ]
        assert stages_refresh(tenant=world.acme) == []
        assert stages_refresh(tenant=world.acme, contact_ids=[ann.pk]) == []
    ann.refresh_from_db()
    assert ann.lifecycle_stage == S.ONBOARDING
    assert changed_events(ann) == [
        {"from": "awareness", "to": "onboarding", "reason": "first_order"}
    ]
    event = Event.objects.get(tenant=world.acme, contact=ann, name=STAGE_CHANGED)
    assert (event.source, event.occurred_at) == ("lifecycle", NOW)
    # The clock moves: the daily run moves ann on, once.
    later = NOW + 30 * DAY
    with time_machine.travel(later, tick=False):
        assert len(stages_refresh(tenant=world.acme)) == 1
        assert stages_refresh(tenant=world.acme) == []
    assert [e["to"] for e in changed_events(ann)] == ["onboarding", "engagement"]
    # Back and forth: the same move later is a new event.
    Contact.objects.filter(pk=ann.pk).update(lifecycle_stage=S.ONBOARDING)
    with time_machine.travel(later + DAY, tick=False):
        assert len(stages_refresh(tenant=world.acme, contact_ids=[ann.pk])) == 1
    assert [e["to"] for e in changed_events(ann)] == ["onboarding", "engagement", "engagement"]


def test_a_whole_team_run_covers_every_batch_and_no_other_team(world, monkeypatch) -> None:
    from audience import stages

    monkeypatch.setattr(stages, "BATCH", 3)
    people = [contact(world, email=f"p{i}@example.com") for i in range(7)]
    other = contact(world, tenant=world.globex, email="g@example.com")
    changes = stages_refresh(tenant=world.acme)
    assert sorted(c.contact_id for c in changes) == [p.pk for p in people]
    assert set(
        Contact.objects.filter(tenant=world.acme).values_list("lifecycle_stage", flat=True)
    ) == {S.ACQUISITION}
    other.refresh_from_db()
    assert other.lifecycle_stage == S.AWARENESS


def test_the_daily_task_moves_what_the_clock_moves_for_every_team(world, eager_tasks) -> None:
    from audience.tasks import lifecycle_stages_refresh_all

    ann = contact(world, email="ann@example.com")
    did(world, ann, "Order Completed", 1 * DAY)
    gus = contact(world, tenant=world.globex, email="gus@example.com")
    did(world, gus, "Product Reviewed", 170 * DAY)
    with time_machine.travel(NOW, tick=False):
        lifecycle_stages_refresh_all.delay()
    ann.refresh_from_db()
    gus.refresh_from_db()
    assert (ann.lifecycle_stage, gus.lifecycle_stage) == (S.ONBOARDING, S.ADVOCACY)
    # 29 days on, ann's onboarding is over and gus's review is too old.
    with time_machine.travel(NOW + 29 * DAY, tick=False):
        lifecycle_stages_refresh_all.delay()
        lifecycle_stages_refresh_all.delay()  # twice: nothing more
    ann.refresh_from_db()
    gus.refresh_from_db()
    assert (ann.lifecycle_stage, gus.lifecycle_stage) == (S.ENGAGEMENT, S.ACQUISITION)
    assert [e["to"] for e in changed_events(ann)] == ["onboarding", "engagement"]
    assert [e["reason"] for e in changed_events(gus)] == ["advocate", "identified"]
