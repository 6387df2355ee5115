"""Local time in journeys is exact across DST changes (DESIGN §8), in three zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audience.models import Contact
from journeys import dates, engine, entry
from journeys.kinds.waits import local_moment, next_in_window
from journeys.models import Enrollment

NY, BERLIN, SYDNEY = "America/New_York", "Europe/Berlin", "Australia/Sydney"
WEEKDAYS = {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # Spring forward: 02:30 does not exist; the first instant after the gap is 03:00.
        (NY, date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        (SYDNEY, date(2026, 10, 4), time(2, 30), datetime(2026, 10, 3, 16, 0, tzinfo=UTC)),
        # Fall back: 01:30 (NY), 02:30 (Berlin/Sydney) happen twice; the first one counts.
        (NY, date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        (BERLIN, date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (SYDNEY, date(2026, 4, 5), time(2, 30), datetime(2026, 4, 4, 15, 30, tzinfo=UTC)),
        # Ordinary times on change days keep the day's new offset.
        (NY, date(2026, 3, 8), time(9, 0), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        (SYDNEY, date(2026, 4, 5), time(9, 0), datetime(2026, 4, 4, 23, 0, tzinfo=UTC)),
    ],
)
def test_it_finds_the_instant_of_a_local_time(
    zone: str, day: date, at: time, expected: datetime
) -> None:
    assert local_moment(day, at, ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    ("zone", "saturday", "monday_nine"),
    [
        (NY, datetime(2026, 3, 7, 17, 0, tzinfo=UTC), datetime(2026, 3, 9, 13, 0, tzinfo=UTC)),
        (BERLIN, datetime(2026, 3, 28, 11, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),
        (SYDNEY, datetime(2026, 4, 4, 2, 0, tzinfo=UTC), datetime(2026, 4, 5, 23, 0, tzinfo=UTC)),
    ],
)
def test_a_window_opens_on_monday_morning_after_the_clocks_changed(
    zone: str, saturday: datetime, monday_nine: datetime
) -> None:
    opens = next_in_window(saturday, ZoneInfo(zone), WEEKDAYS, time(9), time(17))
    assert opens == monday_nine
    assert next_in_window(opens, ZoneInfo(zone), WEEKDAYS, time(9), time(17)) == opens
    assert (
        next_in_window(opens - timedelta(seconds=1), ZoneInfo(zone), WEEKDAYS, time(9), time(17))
        == opens
    )


def test_a_window_past_midnight_holds_until_it_opens() -> None:
    zone = ZoneInfo(BERLIN)
    at = datetime(2026, 6, 3, 21, 30, tzinfo=UTC)  # 23:30 local, inside 22:00 to 06:00
    assert next_in_window(at, zone, set(range(7)), time(22), time(6)) == at
    noon = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    assert next_in_window(noon, zone, set(range(7)), time(22), time(6)) == datetime(
        2026, 6, 3, 20, 0, tzinfo=UTC
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "saturday", "monday_nine"),
    [
        (NY, datetime(2026, 3, 7, 17, 0, tzinfo=UTC), datetime(2026, 3, 9, 13, 0, tzinfo=UTC)),
        (BERLIN, datetime(2026, 3, 28, 11, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),
        (SYDNEY, datetime(2026, 4, 4, 2, 0, tzinfo=UTC), datetime(2026, 4, 5, 23, 0, tzinfo=UTC)),
    ],
)
def test_the_engine_holds_a_window_wait_to_the_second(
    world: Any, journey_factory: Any, zone: str, saturday: datetime, monday_nine: datetime
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_api", {}),
            "w": (
                "wait_window",
                {"days": ["0", "1", "2", "3", "4"], "start": "09:00", "end": "17:00"},
            ),
        },
        "t.next>w",
    )
    contact = Contact.objects.create(tenant=world.acme, email="z@x.io", timezone=zone)
    with time_machine.travel(saturday, tick=False):
        enrollment = entry.enrollment_start(
            tenant=world.acme, journey=journey, contact=contact, context={}, advance=False
        )
        engine.advance_due()
    assert enrollment is not None
    enrollment.refresh_from_db()
    assert enrollment.due_at == monday_nine
    assert engine.advance_due(now=monday_nine - timedelta(seconds=1)) == 0
    assert engine.advance_due(now=monday_nine) == 1
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "birthday", "nine_local"),
    [
        (NY, (3, 8), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),  # the spring-forward day
        (BERLIN, (3, 29), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
        (SYDNEY, (4, 5), datetime(2026, 4, 4, 23, 0, tzinfo=UTC)),  # the fall-back day
    ],
)
def test_a_birthday_enrolls_at_nine_local_once_a_year(
    world: Any, journey_factory: Any, zone: str, birthday: tuple[int, int], nine_local: datetime
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_date", {"attribute": "birthday", "offset_days": 0, "at": "09:00"}),
            "x": ("exit", {}),
        },
        "t.next>x",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    Contact.objects.create(
        tenant=world.acme,
        email="b@x.io",
        timezone=zone,
        birthday_month=birthday[0],
        birthday_day=birthday[1],
    )
    with time_machine.travel(nine_local - timedelta(seconds=1), tick=False):
        assert dates.date_triggers_scan() == 0
    with time_machine.travel(nine_local, tick=False):
        assert dates.date_triggers_scan() == 1
    with time_machine.travel(nine_local + timedelta(hours=5), tick=False):
        assert dates.date_triggers_scan() == 0  # once per date
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.entered_at == nine_local
    assert enrollment.state == Enrollment.State.COMPLETED
    with time_machine.travel(nine_local.replace(year=2027) + timedelta(hours=1), tick=False):
        assert dates.date_triggers_scan() == 1  # next year again (the default: never re-enter)


@pytest.mark.django_db
def test_a_date_trigger_offsets_days_and_reads_custom_attributes(
    world: Any, journey_factory: Any
) -> None:
    journey_factory(
        {
            "t": ("trigger_date", {"attribute": "renewal", "offset_days": -3, "at": "08:00"}),
            "x": ("exit", {}),
        },
        "t.next>x",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    Contact.objects.create(tenant=world.acme, timezone=BERLIN, attributes={"renewal": "2024-07-10"})
    # Three days before 10 July, 08:00 Berlin (CEST) = 06:00 UTC.
    moment = datetime(2026, 7, 7, 6, 0, tzinfo=UTC)
    with time_machine.travel(moment - timedelta(minutes=1), tick=False):
        assert dates.date_triggers_scan() == 0
    with time_machine.travel(moment + timedelta(minutes=1), tick=False):
        assert dates.date_triggers_scan() == 1
