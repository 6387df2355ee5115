"""Recurring campaigns: each slot of the crontab (the team's zone) runs exactly once — fired by
its beat entry, by the tick, twice, at once, or at the wrong hour across a DST change."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django_celery_beat.models import PeriodicTask

from campaigns import dispatch, services, tasks
from campaigns.models import Campaign, Occurrence
from messaging.models import Delivery
from tests.campaigns.conftest import outbox_sent
from tests.e2e import conftest as e2e
from tests.e2e import test_celery_worker

pytestmark = pytest.mark.django_db

# The fixtures of tests/e2e (the real-process test at the end).
celery_env = test_celery_worker.celery_env
processes = e2e.processes


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily_at_9_in_berlin(world: Any, campaign_factory: Any, **fields: Any) -> Campaign:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save()
    return campaign_factory(contacts=2, schedule="recurring", cron_hour="9", **fields)


def fire(campaign: Campaign) -> None:
    """What the beat entry and the clock do at a slot: both, twice."""
    tasks.recurring_fire(str(campaign.public_id))
    tasks.recurring_fire(str(campaign.public_id))
    tasks.campaigns_tick()
    outbox_sent()  # the senders
    tasks.campaigns_tick()


@pytest.mark.parametrize(
    ("scheduled_at", "slots"),
    [
        # Spring forward on 29 March: 9:00 is 08:00 UTC, then 07:00.
        (utc(2026, 3, 27, 12), [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]),
        # Fall back on 25 October: 9:00 is 07:00 UTC, then 08:00.
        (utc(2026, 10, 23, 12), [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]),
    ],
)
def test_a_daily_campaign_sends_once_a_day_at_9_local_across_a_clock_change(
    world: Any, campaign_factory: Any, scheduled_at: datetime, slots: list[datetime]
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory)
    with time_machine.travel(scheduled_at, tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    assert campaign.send_at == slots[0]
    for slot in slots:
        # An hour early (a beat that got the change wrong): nothing.
        with time_machine.travel(slot - timedelta(hours=1), tick=False):
            fire(campaign)
        # At the slot, and an hour late: one occurrence.
        with time_machine.travel(slot + timedelta(seconds=2), tick=False):
            fire(campaign)
        with time_machine.travel(slot + timedelta(hours=1), tick=False):
            fire(campaign)
    keys = list(Occurrence.objects.order_by("started_at").values_list("key", flat=True))
    assert keys == [s.strftime("%Y-%m-%dT%H:%MZ") for s in slots]
    assert set(Occurrence.objects.values_list("state", flat=True)) == {Occurrence.State.SENT}
    # Two people, one message each per day.
    assert Delivery.objects.count() == 2 * len(slots)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SCHEDULED  # waiting for tomorrow
    assert campaign.send_at == slots[-1] + timedelta(days=1)


def test_a_slot_missed_while_beat_was_down_runs_once_when_it_comes_back(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory)
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 9, 10), tick=False):  # three slots later
        fire(campaign)
    assert list(Occurrence.objects.values_list("key", flat=True)) == ["2026-12-09T08:00Z"]


def test_it_stops_after_recurring_until_and_removes_its_beat_entry(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory, recurring_until=utc(2026, 12, 8, 12))
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    assert PeriodicTask.objects.get().expires == utc(2026, 12, 8, 12)
    for day in (7, 8, 9):
        with time_machine.travel(utc(2026, 12, day, 8, 0, 5), tick=False):
            fire(campaign)
    assert Occurrence.objects.count() == 2
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENT
    assert not PeriodicTask.objects.exists()


def test_a_paused_recurring_campaign_catches_up_once_on_the_slot_it_missed(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory, throttle_per_minute=1)
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 7, 8, 0, 5), tick=False):
        fire(campaign)
        services.campaign_pause(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 8, 8, 0, 5), tick=False):
        fire(campaign)  # still the 7th's occurrence, paused: no new one
    assert Occurrence.objects.count() == 1
    with time_machine.travel(utc(2026, 12, 8, 9), tick=False):
        services.campaign_resume(campaign=campaign)
        fire(campaign)
    with time_machine.travel(utc(2026, 12, 8, 9, 2), tick=False):
        fire(campaign)
    assert Occurrence.objects.get().state == Occurrence.State.SENT
    campaign.refresh_from_db()
    # The 8th's slot passed while the 7th's occurrence was still on: due at once…
    assert (campaign.state, campaign.send_at) == (Campaign.State.SCHEDULED, utc(2026, 12, 8, 8))
    with time_machine.travel(utc(2026, 12, 8, 9, 3), tick=False):
        fire(campaign)
    with time_machine.travel(utc(2026, 12, 8, 9, 5), tick=False):
        fire(campaign)
    # …once; then the 9th's.
    keys = list(Occurrence.objects.order_by("started_at").values_list("key", flat=True))
    assert keys == ["2026-12-07T08:00Z", "2026-12-08T08:00Z"]
    campaign.refresh_from_db()
    assert (campaign.state, campaign.send_at) == (Campaign.State.SCHEDULED, utc(2026, 12, 9, 8))


def still_sending_until(moment: datetime) -> None:
    """The open occurrence's last recipient comes due at `moment` (a slow throttle or its
    best hour)."""
    from campaigns.models import Recipient

    Recipient.objects.filter(released=False, holdout=False).update(due_at=moment)


def test_a_slot_that_comes_while_the_previous_occurrence_still_sends_runs_when_it_ends(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory, throttle_per_minute=1)
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 7, 8, 0, 5), tick=False):  # Monday 9:00
        fire(campaign)
        still_sending_until(utc(2026, 12, 8, 8, 0, 10))
    with time_machine.travel(utc(2026, 12, 8, 8, 0, 2), tick=False):  # Tuesday's slot fires
        fire(campaign)
    assert Occurrence.objects.count() == 1
    with time_machine.travel(utc(2026, 12, 8, 8, 0, 20), tick=False):  # Monday's ends
        fire(campaign)
    with time_machine.travel(utc(2026, 12, 8, 8, 0, 25), tick=False):
        fire(campaign)
    keys = list(Occurrence.objects.order_by("started_at").values_list("key", flat=True))
    assert keys == ["2026-12-07T08:00Z", "2026-12-08T08:00Z"]
    tuesday = Occurrence.objects.get(key="2026-12-08T08:00Z")
    assert tuesday.started_at == utc(2026, 12, 8, 8, 0, 25)


def test_when_several_slots_passed_while_it_sent_only_the_latest_catches_up(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory, throttle_per_minute=1)
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 7, 8, 0, 5), tick=False):
        fire(campaign)
        still_sending_until(utc(2026, 12, 10, 10))
    for day in (8, 9, 10):
        with time_machine.travel(utc(2026, 12, day, 8, 0, 5), tick=False):
            fire(campaign)
    for minute in (1, 2):
        with time_machine.travel(utc(2026, 12, 10, 10, minute), tick=False):
            fire(campaign)
    keys = list(Occurrence.objects.order_by("started_at").values_list("key", flat=True))
    assert keys == ["2026-12-07T08:00Z", "2026-12-10T08:00Z"]


def test_a_last_slot_missed_while_beat_was_down_ends_the_campaign(
    world: Any, campaign_factory: Any
) -> None:
    campaign = daily_at_9_in_berlin(world, campaign_factory, recurring_until=utc(2026, 12, 8, 12))
    with time_machine.travel(utc(2026, 12, 6, 12), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    with time_machine.travel(utc(2026, 12, 7, 8, 0, 5), tick=False):
        fire(campaign)
    campaign.refresh_from_db()
    assert (campaign.state, campaign.send_at) == (Campaign.State.SCHEDULED, utc(2026, 12, 8, 8))
    # Beat was down over the 8th's slot, the last before recurring_until: the 9th's is after.
    with time_machine.travel(utc(2026, 12, 9, 10), tick=False):
        fire(campaign)
    assert Occurrence.objects.count() == 1
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENT
    assert not PeriodicTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_firing_one_slot_at_once_start_one_occurrence(
    world: Any, campaign_factory: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: nothing to race")
    campaign = campaign_factory(contacts=500, schedule="recurring", cron_minute="*", cron_hour="*")
    campaign = services.campaign_schedule(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(send_at=campaign.send_at - timedelta(minutes=1))
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def beat() -> None:
        try:
            barrier.wait()
            results.append(tasks.recurring_fire(str(campaign.public_id)))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    occurrence = Occurrence.objects.get()
    assert occurrence.recipient_count == 500
    assert dispatch.campaign_start_due(campaign=Campaign.objects.get()) is None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_beat_entry_fires_a_recurring_campaign_once_per_slot_on_real_processes(
    processes: Any, celery_env: dict[str, str], tmp_path: Any, world: Any, campaign_factory: Any
) -> None:
    """Every minute, on a real beat (its PeriodicTask and the tick both fire) and worker, into
    a real SMTP server: one occurrence for the slot, one message per person."""
    from tests.e2e.conftest import wait_for
    from tests.mail_sink import MailSink

    campaign = campaign_factory(
        contacts=3, schedule="recurring", cron_minute="*", cron_hour="*", name="Minutely"
    )
    with MailSink() as sink:
        env = {**celery_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "EMAIL_TIMEOUT": "10"}
        test_celery_worker.start_worker(processes, env, tmp_path)
        test_celery_worker.wait_for_worker_ready(processes)
        campaign = services.campaign_schedule(campaign=campaign)
        beat = test_celery_worker.start_beat(processes, env, tmp_path)
        occurrence = wait_for(
            lambda: Occurrence.objects.filter(campaign=campaign).first(),
            timeout=90,
            what="the first slot's occurrence",
            runner=processes,
        )
        wait_for(
            lambda: len(sink.received()) == 3,
            timeout=60,
            what="the slot's three messages",
            runner=processes,
        )
        wait_for(
            lambda: "campaigns.tasks.recurring_fire" in beat.log(),
            timeout=70,
            what="beat to send the campaign's own entry",
            runner=processes,
        )
        slot = occurrence.key
        time.sleep(3)  # a second start of the same slot, if there were one, would show now
        received = [r.rcpt_tos[0] for r in sink.received()]
    assert Occurrence.objects.filter(campaign=campaign, key=slot).count() == 1
    per_slot = Counter(
        Delivery.objects.filter(source=f"campaign:{campaign.public_id}").values_list(
            "idempotency_key", flat=True
        )
    )
    assert set(per_slot.values()) == {1}
    # Each person once per slot that ran (a later minute's slot may have started meanwhile).
    slots = Occurrence.objects.filter(campaign=campaign).count()
    per_person = Counter(received)
    assert len(per_person) == 3 and max(per_person.values()) <= slots
