"""When campaigns send: crontab slots in the team's zone and local times, across DST changes.

2026's changes: Europe/Berlin springs forward on 29 March (02:00 → 03:00) and falls back on
25 October; America/New_York springs forward on 8 March."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from campaigns import schedules
from campaigns.models import Campaign, Recipient
from tests.campaigns.conftest import outbox_sent, people, segment_of

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAILY_9 = {"cron_minute": "0", "cron_hour": "9"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_it_reads_9_am_berlin_as_8_utc_in_winter_and_7_utc_from_the_day_clocks_spring_forward() -> (
    None
):
    slots = []
    at = utc(2026, 3, 27, 12)
    for _ in range(3):
        at = schedules.slot_next(DAILY_9, BERLIN, at)
        slots.append(at)
    assert slots == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_it_reads_9_am_berlin_as_7_utc_then_8_utc_when_clocks_fall_back() -> None:
    assert schedules.slot_next(DAILY_9, BERLIN, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 8)
    assert schedules.slot_latest(DAILY_9, BERLIN, utc(2026, 10, 25, 7, 59)) == utc(2026, 10, 24, 7)


def test_the_latest_slot_is_the_one_that_just_passed_and_the_next_one_is_strictly_after() -> None:
    assert schedules.slot_latest(DAILY_9, BERLIN, utc(2026, 3, 29, 7)) == utc(2026, 3, 29, 7)
    assert schedules.slot_latest(DAILY_9, BERLIN, utc(2026, 3, 29, 6, 59)) == utc(2026, 3, 28, 8)
    assert schedules.slot_next(DAILY_9, BERLIN, utc(2026, 3, 29, 7)) == utc(2026, 3, 30, 7)


def test_a_local_time_that_happens_twice_is_taken_the_first_time() -> None:
    at_230 = {"cron_minute": "30", "cron_hour": "2"}
    # 25 October 2026, Berlin: 02:30 summer time (00:30 UTC), then 02:30 winter time (01:30).
    assert schedules.slot_next(at_230, BERLIN, utc(2026, 10, 24, 23)) == utc(2026, 10, 25, 0, 30)
    assert schedules.slot_next(at_230, BERLIN, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)


def test_a_local_time_skipped_by_the_clocks_still_sends_that_day() -> None:
    at_230 = {"cron_minute": "30", "cron_hour": "2"}
    assert schedules.slot_next(at_230, BERLIN, utc(2026, 3, 28, 23)) == utc(2026, 3, 29, 1, 30)


def test_weekdays_and_months_follow_celerys_crontab() -> None:
    mondays = {"cron_minute": "15", "cron_hour": "8", "cron_day_of_week": "mon"}
    # 7 December 2026 is a Monday.
    assert schedules.slot_next(mondays, UTC, utc(2026, 12, 7, 9)) == utc(2026, 12, 14, 8, 15)
    first_of_june = {
        "cron_minute": "0",
        "cron_hour": "6",
        "cron_day_of_month": "1",
        "cron_month_of_year": "6",
    }
    assert schedules.slot_next(first_of_june, UTC, utc(2026, 12, 7)) == utc(2027, 6, 1, 6)


def test_it_stops_at_the_end_of_a_recurring_schedule() -> None:
    until = utc(2026, 3, 29, 12)
    assert schedules.slot_next(DAILY_9, BERLIN, utc(2026, 3, 29, 7), until) is None


def test_it_names_the_crontab_fields_a_marketer_got_wrong() -> None:
    errors = schedules.cron_errors({"cron_minute": "75", "cron_hour": "9", "cron_day_of_week": "x"})
    assert set(errors) == {"cron_minute", "cron_day_of_week"}
    assert errors["cron_minute"].startswith("Not a valid minute")
    assert schedules.cron_errors(DAILY_9) == {}


def test_an_occurrence_key_is_its_slot_in_utc_to_the_minute() -> None:
    assert schedules.slot_key(datetime(2026, 3, 29, 9, tzinfo=BERLIN)) == "2026-03-29T07:00Z"


def test_local_times_follow_each_zones_own_clock_change() -> None:
    moments = schedules.local_moments(
        date(2026, 3, 29), time(9), ["Europe/Berlin", "America/New_York", "Not/AZone"], "Asia/Tokyo"
    )
    assert moments == {
        "": utc(2026, 3, 29, 0),  # Tokyo, the team's
        "Europe/Berlin": utc(2026, 3, 29, 7),  # CEST since 02:00 that morning
        "America/New_York": utc(2026, 3, 29, 13),  # EDT since 8 March
        "Not/AZone": utc(2026, 3, 29, 0),  # unknown: the team's
    }
    saturday = schedules.local_moments(date(2026, 3, 28), time(9), ["Europe/Berlin"], "UTC")
    assert saturday["Europe/Berlin"] == utc(2026, 3, 28, 8)


def test_send_time_optimisation_takes_the_next_best_hour_within_the_window() -> None:
    start = utc(2026, 12, 7, 10, 30)
    assert schedules.sto_moment(start, 18, 24) == utc(2026, 12, 7, 18)
    assert schedules.sto_moment(start, 9, 24) == utc(2026, 12, 8, 9)
    assert schedules.sto_moment(start, 9, 6) == start  # outside the window: at the start


@pytest.mark.django_db
def test_each_recipient_is_due_at_9_on_their_own_clock_on_the_day_clocks_change(
    world: Any, campaign_factory: Any
) -> None:
    from campaigns import dispatch, services

    world.acme.timezone = "Asia/Tokyo"
    world.acme.save()
    berlin = people(world.acme, 1, "berlin", timezone="Europe/Berlin")[0]
    york = people(world.acme, 1, "york", timezone="America/New_York")[0]
    team = people(world.acme, 1, "team")[0]
    campaign = campaign_factory(
        segments=[segment_of(world.acme, [berlin, york, team])],
        schedule=Campaign.Schedule.LOCAL,
        local_date=date(2026, 3, 29),
        local_time=time(9),
    )
    with time_machine.travel(utc(2026, 3, 27, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    # Frozen at the earliest of the team's zones: Tokyo's 9:00.
    assert campaign.send_at == utc(2026, 3, 29, 0)
    with time_machine.travel(utc(2026, 3, 28, 23, 59), tick=False):
        assert dispatch.tick()["started"] == 0
    with time_machine.travel(utc(2026, 3, 29, 0, 0, 5), tick=False):
        assert dispatch.tick()["started"] == 1
        due = dict(Recipient.objects.values_list("contact_id", "due_at"))
        assert due == {
            team.pk: utc(2026, 3, 29, 0, 0, 5),  # the start: its moment has just come
            berlin.pk: utc(2026, 3, 29, 7),
            york.pk: utc(2026, 3, 29, 13),
        }
        assert Recipient.objects.filter(released=True).count() == 1
    with time_machine.travel(utc(2026, 3, 29, 7, 0, 1), tick=False):
        dispatch.tick()
        assert set(
            Recipient.objects.filter(released=True).values_list("contact_id", flat=True)
        ) == {
            team.pk,
            berlin.pk,
        }
    with time_machine.travel(utc(2026, 3, 29, 13, 0, 1), tick=False):
        dispatch.tick()
        assert Recipient.objects.filter(released=False).count() == 0
        outbox_sent()
        dispatch.tick()
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.SENT
