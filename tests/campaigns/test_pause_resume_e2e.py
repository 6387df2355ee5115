"""Pausing mid-send and resuming, on real processes: a Celery worker and beat (the campaigns'
tick every second), the outbox sender and a real SMTP server. Every recipient gets the
campaign exactly once, counted in the SMTP server."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns import services
from campaigns.models import Campaign, Recipient
from tests.campaigns.conftest import campaign_make, people, segment_of
from tests.e2e import conftest as e2e
from tests.e2e import test_celery_worker
from tests.e2e.conftest import ProcessRunner, wait_for
from tests.mail_sink import MailSink

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures of tests/e2e: a worker's environment (the test database) and process management.
celery_env = test_celery_worker.celery_env
processes = e2e.processes

AUDIENCE = 40


def addresses(sink: MailSink) -> Counter[str]:
    return Counter(address for r in sink.received() for address in r.rcpt_tos)


def test_pausing_mid_send_and_resuming_delivers_every_recipient_exactly_once(
    processes: ProcessRunner, celery_env: dict[str, str], tmp_path: Path, world: Any
) -> None:
    # The tick every second (production: every 10 s, config/celery.py).
    PeriodicTask.objects.create(
        name="test: campaigns tick",
        task="campaigns.tasks.campaigns_tick",
        interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS),
    )
    members = people(world.acme, AUDIENCE)
    campaign = campaign_make(
        world,
        name="Launch",
        segments=[segment_of(world.acme, members)],
        throttle_per_minute=240,  # four a second: ten seconds for everyone
    )
    with MailSink() as sink:
        env = {**celery_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "EMAIL_TIMEOUT": "10"}
        test_celery_worker.start_worker(processes, env, tmp_path)
        test_celery_worker.start_beat(processes, env, tmp_path)
        test_celery_worker.wait_for_worker_ready(processes)

        services.campaign_schedule(campaign=campaign)
        wait_for(
            lambda: sum(addresses(sink).values()) >= 8,
            timeout=60,
            what="the first messages in the SMTP server",
            runner=processes,
        )
        services.campaign_pause(campaign=campaign)
        released = Recipient.objects.filter(released=True).count()
        assert released < AUDIENCE, "it sent everything before the pause"
        # What was released before the pause still goes; nothing more is released.
        wait_for(
            lambda: sum(addresses(sink).values()) == released,
            timeout=30,
            what=f"the {released} messages released before the pause",
            runner=processes,
        )
        time.sleep(4)  # four ticks
        assert Recipient.objects.filter(released=True).count() == released
        assert sum(addresses(sink).values()) == released
        assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.PAUSED

        services.campaign_resume(campaign=campaign)
        wait_for(
            lambda: len(addresses(sink)) == AUDIENCE,
            timeout=60,
            what="every recipient's message after resuming",
            runner=processes,
        )
        wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).state == Campaign.State.SENT,
            timeout=30,
            what="the campaign to be sent",
            runner=processes,
        )
        time.sleep(2)  # a resend, if there were one, would arrive now
        received = addresses(sink)

    assert received == Counter({m.email: 1 for m in members})
    subjects = {r.message["Subject"] for r in sink.received()}
    assert subjects == {f"Hello {m.first_name}" for m in members}


def test_pausing_a_send_now_campaign_stops_it_within_a_batch_and_resuming_sends_the_rest_once(
    processes: ProcessRunner, celery_env: dict[str, str], tmp_path: Path, world: Any
) -> None:
    """No throttle: everyone is in the outbox from the start, so the pause must take back what
    no sender holds yet."""
    audience = 3000
    members = people(world.acme, audience)
    campaign = campaign_make(world, name="Flash sale", segments=[segment_of(world.acme, members)])
    with MailSink() as sink:
        env = {**celery_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "EMAIL_TIMEOUT": "10"}
        test_celery_worker.start_worker(processes, env, tmp_path)
        test_celery_worker.start_beat(processes, env, tmp_path)
        test_celery_worker.wait_for_worker_ready(processes)

        services.campaign_schedule(campaign=campaign)
        wait_for(
            lambda: sum(addresses(sink).values()) >= 100,
            timeout=60,
            what="the first hundred messages",
            runner=processes,
        )
        services.campaign_pause(campaign=campaign)
        released = Recipient.objects.filter(released=True).count()
        assert released < audience, "it sent everything before the pause"
        wait_for(
            lambda: sum(addresses(sink).values()) == released,
            timeout=30,
            what=f"the {released} messages a sender held at the pause",
            runner=processes,
        )
        time.sleep(4)
        assert sum(addresses(sink).values()) == released
        assert Recipient.objects.filter(released=True).count() == released

        services.campaign_resume(campaign=campaign)
        wait_for(
            lambda: len(addresses(sink)) == audience,
            timeout=120,
            what="every recipient's message after resuming",
            runner=processes,
        )
        time.sleep(2)
        received = addresses(sink)
    assert received == Counter({m.email: 1 for m in members})
