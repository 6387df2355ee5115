"""One beat leads: the lease that lets a beat process dispatch periodic tasks
(ops.services.scheduler_lease_take). Two beats at once, as processes, are in
tests/e2e/test_faults.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from ops.models import SchedulerLease
from ops.services import scheduler_lease_release, scheduler_lease_take

pytestmark = pytest.mark.django_db


def test_the_first_beat_leads_and_a_second_stands_by_while_the_lease_runs() -> None:
    assert scheduler_lease_take(holder="beat-1", seconds=30)
    assert not scheduler_lease_take(holder="beat-2", seconds=30)
    assert scheduler_lease_take(holder="beat-1", seconds=30)  # renewing its own
    assert SchedulerLease.objects.get().holder == "beat-1"


def test_a_standby_takes_over_once_the_leader_stopped_renewing() -> None:
    assert scheduler_lease_take(holder="beat-1", seconds=30)
    with time_machine.travel(timezone.now() + timedelta(seconds=29), tick=False):
        assert not scheduler_lease_take(holder="beat-2", seconds=30)
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        assert scheduler_lease_take(holder="beat-2", seconds=30)
        # The old leader, back from a long pause, finds it taken and stands by.
        assert not scheduler_lease_take(holder="beat-1", seconds=30)
    assert SchedulerLease.objects.get().holder == "beat-2"


def test_a_beat_that_stops_cleanly_hands_the_lease_on_at_once() -> None:
    assert scheduler_lease_take(holder="beat-1", seconds=30)
    scheduler_lease_release(holder="beat-2")  # not its lease: nothing changes
    assert not scheduler_lease_take(holder="beat-2", seconds=30)
    scheduler_lease_release(holder="beat-1")
    with time_machine.travel(timezone.now() + timedelta(microseconds=1), tick=False):
        assert scheduler_lease_take(holder="beat-2", seconds=30)
