"""Send-time optimisation: each contact's best hour from their own opens and clicks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine

from campaigns import sto
from messaging import outcomes
from tests.campaigns.test_results import contact_make, event_make

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(days_ago: int, hour: int, minute: int = 15) -> datetime:
    day = NOW - timedelta(days=days_ago)
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


def test_each_contact_gets_the_hour_they_engage_most(world: Any) -> None:
    morning, evening, nobody = (contact_make(world.acme) for _ in range(3))
    for days in (1, 2, 3):
        event_make(world.acme, morning, outcomes.EMAIL_OPENED, at(days, 7))
    event_make(world.acme, morning, outcomes.EMAIL_CLICKED, at(4, 21))
    event_make(world.acme, evening, outcomes.EMAIL_OPENED, at(1, 20, 59))
    event_make(world.acme, evening, outcomes.EMAIL_CLICKED, at(1, 20, 59))
    event_make(world.acme, evening, outcomes.PUSH_CLICKED, at(5, 20, 0))
    event_make(world.acme, evening, outcomes.EMAIL_OPENED, at(6, 9))
    # Not engagement: sending, ordering, browsing.
    for name in (outcomes.EMAIL_SENT, "Order Completed", "Page Viewed"):
        for days in range(5):
            event_make(world.acme, nobody, name, at(days, 3))

    with time_machine.travel(NOW, tick=False):
        hours = sto.best_hours(tenant=world.acme, contact_ids=[morning.pk, evening.pk, nobody.pk])

    assert hours == {morning.pk: 7, evening.pk: 20, nobody.pk: None}


def test_hours_are_utc_whatever_the_teams_zone(world: Any) -> None:
    world.acme.timezone = "Asia/Tokyo"
    world.acme.save(update_fields=["timezone"])
    c = contact_make(world.acme, timezone="America/Los_Angeles")
    event_make(world.acme, c, outcomes.EMAIL_OPENED, at(1, 23, 30))

    with time_machine.travel(NOW, tick=False):
        assert sto.best_hours(tenant=world.acme, contact_ids=[c.pk]) == {c.pk: 23}


def test_a_tie_goes_to_the_earlier_hour(world: Any) -> None:
    c = contact_make(world.acme)
    for hour in (18, 6, 12):
        event_make(world.acme, c, outcomes.EMAIL_OPENED, at(1, hour))

    with time_machine.travel(NOW, tick=False):
        assert sto.best_hours(tenant=world.acme, contact_ids=[c.pk]) == {c.pk: 6}


def test_only_the_last_90_days_count(world: Any) -> None:
    c = contact_make(world.acme)
    for days in (91, 95, 120):
        event_make(world.acme, c, outcomes.EMAIL_OPENED, at(days, 5))
    event_make(world.acme, c, outcomes.EMAIL_OPENED, at(89, 16))

    with time_machine.travel(NOW, tick=False):
        assert sto.best_hours(tenant=world.acme, contact_ids=[c.pk]) == {c.pk: 16}


def test_another_tenants_events_never_count(world: Any) -> None:
    ours, theirs = contact_make(world.acme), contact_make(world.globex)
    event_make(world.acme, ours, outcomes.EMAIL_OPENED, at(1, 10))
    for days in range(1, 6):
        event_make(world.globex, theirs, outcomes.EMAIL_OPENED, at(days, 4))

    with time_machine.travel(NOW, tick=False):
        # Asked about the other team's contact through ours: nothing is known.
        assert sto.best_hours(tenant=world.acme, contact_ids=[ours.pk, theirs.pk]) == {
            ours.pk: 10,
            theirs.pk: None,
        }
        assert sto.team_best_hour(tenant=world.acme) == 10
        assert sto.team_best_hour(tenant=world.globex) == 4


def test_many_contacts_are_answered_in_chunks(world: Any, django_assert_num_queries: Any) -> None:
    contacts = [contact_make(world.acme) for _ in range(7)]
    for n, c in enumerate(contacts):
        event_make(world.acme, c, outcomes.EMAIL_CLICKED, at(1, n))
    original, sto.CHUNK = sto.CHUNK, 3
    try:
        with time_machine.travel(NOW, tick=False), django_assert_num_queries(3):
            hours = sto.best_hours(tenant=world.acme, contact_ids=iter([c.pk for c in contacts]))
    finally:
        sto.CHUNK = original

    assert hours == {c.pk: n for n, c in enumerate(contacts)}


def test_the_team_hour_is_the_busiest_and_none_without_history(world: Any) -> None:
    a, b = contact_make(world.acme), contact_make(world.acme)

    with time_machine.travel(NOW, tick=False):
        assert sto.team_best_hour(tenant=world.acme) is None

    event_make(world.acme, a, outcomes.EMAIL_OPENED, at(1, 8))
    event_make(world.acme, b, outcomes.EMAIL_OPENED, at(2, 8))
    event_make(world.acme, b, outcomes.EMAIL_CLICKED, at(3, 14))
    event_make(world.acme, a, outcomes.EMAIL_OPENED, at(100, 14))  # too old
    event_make(world.acme, a, outcomes.EMAIL_OPENED, at(100, 14))

    with time_machine.travel(NOW, tick=False):
        assert sto.team_best_hour(tenant=world.acme) == 8
