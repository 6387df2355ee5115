"""A segment deleted while a membership refresh runs: the refresh skips it and does the rest, and
the deletion waits for a refresh that holds the segment instead of failing at commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from audience.models import Contact
from segments import services
from segments.models import Segment, SegmentMembership
from tests.segments.test_membership import buyers, members, track


def test_it_skips_a_segment_deleted_before_its_refresh(world) -> None:
    gone = services.segment_create(tenant=world.acme, name="Gone", rules=buyers())
    track(world.acme, "ann", "Order Completed", "o1")
    ann = Contact.objects.get(tenant=world.acme)
    stale = Segment.objects.get(pk=gone.pk)  # what a refresh selected before the deletion
    services.segment_delete(tenant=world.acme, segment=gone)

    for scope in ([ann.pk], None):  # the incremental refresh and the full one
        change = services.segment_membership_refresh(segment=stale, scope=scope)
        assert (change.entered, change.exited) == ([], [])
    assert not SegmentMembership.objects.filter(segment_id=stale.pk).exists()


# --- two connections at once (PostgreSQL's row locks) --------------------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one write transaction at a time"
)


def _waiting_for_a_lock(count: int = 1) -> bool:
    """Whether `count` other connections of this database wait for a row lock."""
    with connection.cursor() as cursor:
        # Inside a transaction, PostgreSQL keeps the first snapshot of the statistics views.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] >= count  # type: ignore[index]


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class Worker(threading.Thread):
    """Runs `work` on a connection of its own; the test reads `.result` or `.error` after join."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work, self.result, self.error = work, None, None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            connection.close()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_it_refreshes_the_other_segments_when_one_is_deleted_meanwhile(world) -> None:
    gone = services.segment_create(tenant=world.acme, name="Gone", rules=buyers())
    kept = services.segment_create(tenant=world.acme, name="Kept", rules=buyers())
    track(world.acme, "ann", "Order Completed", "o1")  # Ann should now enter both
    ann = Contact.objects.get(tenant=world.acme)
    deleting, commit = threading.Event(), threading.Event()

    def delete_then_wait() -> None:
        with transaction.atomic():
            services.segment_delete(tenant=world.acme, segment=gone)
            deleting.set()
            commit.wait(timeout=30)  # the deletion commits while the refresh waits for it

    deleter = Worker(delete_then_wait)
    deleter.start()
    assert deleting.wait(timeout=20)
    refresher = Worker(
        lambda: services.segment_memberships_refresh_contacts(
            tenant=world.acme, contact_ids=[ann.pk]
        )
    )
    refresher.start()
    _wait(_waiting_for_a_lock, "the refresh to wait for the deleted segment's row")
    commit.set()
    for worker in (deleter, refresher):
        worker.join(timeout=30)
        assert not worker.is_alive() and worker.error is None, worker.error

    assert refresher.result == 1  # Ann entered Kept; Gone was skipped, not failed
    assert members(kept) == {"ann"}
    assert not Segment.objects.filter(pk=gone.pk).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_it_deletes_a_segment_after_a_refresh_that_holds_it(world) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    track(world.acme, "ann", "Order Completed", "o1")
    ann = Contact.objects.get(tenant=world.acme)

    with transaction.atomic():  # a refresh in progress: Ann's membership not yet committed
        services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=[ann.pk])
        deleter = Worker(lambda: services.segment_delete(tenant=world.acme, segment=segment))
        deleter.start()
        _wait(_waiting_for_a_lock, "the deletion to wait for the refresh")
    deleter.join(timeout=30)

    assert not deleter.is_alive() and deleter.error is None, deleter.error
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not SegmentMembership.objects.filter(segment_id=segment.pk).exists()
