"""Read-your-writes for one visitor (audience.services.visitor_settle → audience/inbox.py
`inbox_settle`): their calls still waiting in the ingestion inbox are recorded in the request
that asks, exactly once, beside the ingest worker."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from audience import inbox
from audience.inbox import inbox_accept, inbox_drain
from audience.models import Contact, Event, InboxBatch, LifecycleStage
from audience.segment_spec import parse_call
from audience.services import visitor_settle


def track(event: str, message_id: str, **fields: object) -> dict[str, object]:
    return {"type": "track", "event": event, "messageId": message_id, **fields}


def accept(tenant: Any, *calls: dict[str, object]) -> None:
    inbox_accept(tenant=tenant, calls=[parse_call(c) for c in calls], source="http")


@pytest.mark.django_db
def test_it_records_the_visitors_waiting_calls_and_leaves_the_others_waiting(world) -> None:
    accept(world.acme, track("Product Viewed", "a1", anonymousId="anon-ann"))
    accept(world.acme, track("Product Viewed", "b1", anonymousId="anon-bea"))
    accept(world.acme, track("Signed Up", "a2", userId="ann-1", anonymousId="anon-ann"))

    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-ann") is True

    ann = Contact.objects.get(tenant=world.acme, user_id="ann-1")
    tracked = ann.events.exclude(message_id__startswith="wf:")  # not the stage change it made
    assert set(tracked.values_list("message_id", flat=True)) == {"a1", "a2"}
    assert InboxBatch.objects.count() == 1  # Bea's call waits for the worker
    assert inbox_drain().batches == 1
    assert Event.objects.exclude(message_id__startswith="wf:").count() == 3


@pytest.mark.django_db
def test_it_finds_the_visitor_by_user_id_too(world) -> None:
    accept(world.acme, track("Order Completed", "o1", userId="u-7", properties={"total": 10}))
    assert visitor_settle(tenant=world.acme, user_id="u-7", anonymous_id=None) is True
    assert Event.objects.filter(tenant=world.acme, message_id="o1").exists()


@pytest.mark.django_db
def test_it_brings_the_visitors_lifecycle_stage_up_to_date(world) -> None:
    accept(world.acme, track("Order Completed", "o1", userId="u-8", properties={"total": 10}))
    visitor_settle(tenant=world.acme, user_id="u-8", anonymous_id=None)
    contact = Contact.objects.get(tenant=world.acme, user_id="u-8")
    assert contact.lifecycle_stage == LifecycleStage.ONBOARDING  # a first order, just now


@pytest.mark.django_db
def test_it_never_records_another_tenants_rows(world) -> None:
    accept(world.globex, track("Product Viewed", "g1", anonymousId="anon-same"))
    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-same") is False
    assert InboxBatch.objects.filter(tenant=world.globex).count() == 1
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_it_does_not_match_an_id_that_merely_starts_like_the_visitors(world) -> None:
    accept(world.acme, track("Product Viewed", "x1", anonymousId="anon-12"))
    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-1") is False
    assert InboxBatch.objects.count() == 1


@pytest.mark.django_db
def test_it_treats_like_wildcards_in_an_id_as_plain_characters(world) -> None:
    accept(world.acme, track("Product Viewed", "x1", anonymousId="anon-12"))
    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-%") is False
    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-_2") is False
    assert InboxBatch.objects.count() == 1


@pytest.mark.django_db
def test_it_costs_one_query_when_nothing_is_waiting(world, django_assert_num_queries) -> None:
    accept(world.acme, track("Product Viewed", "b1", anonymousId="anon-bea"))
    with django_assert_num_queries(1):
        assert visitor_settle(tenant=world.acme, user_id="u-1", anonymous_id="anon-ann") is False


@pytest.mark.django_db
def test_it_sets_nothing_aside_and_leaves_failed_rows_to_the_operator(world) -> None:
    accept(world.acme, track("Product Viewed", "a1", anonymousId="anon-ann"))
    InboxBatch.objects.update(failed_at=Event._meta.get_field("received_at").default())
    assert visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-ann") is False
    assert InboxBatch.objects.count() == 1


# On PostgreSQL the settle waits on the row's lock; on SQLite on the worker's write lock (its
# transaction is BEGIN IMMEDIATE): the same guarantee, both tested.
@pytest.mark.django_db(transaction=True)
def test_it_waits_for_a_row_a_worker_holds_rather_than_record_it_twice(world) -> None:
    accept(world.acme, track("Product Viewed", "a1", anonymousId="anon-ann"))
    claimed, recorded = threading.Event(), []

    def slow_worker() -> None:
        try:
            with transaction.atomic():
                rows = inbox._claim(10)
                claimed.set()
                time.sleep(0.5)  # the worker is mid-chunk when the visitor's page asks
                recorded.append(inbox._record_rows(rows).batches)
        finally:
            connection.close()

    worker = threading.Thread(target=slow_worker)
    worker.start()
    assert claimed.wait(10)
    started = time.monotonic()
    settled = visitor_settle(tenant=world.acme, user_id=None, anonymous_id="anon-ann")
    waited = time.monotonic() - started
    worker.join(10)

    assert recorded == [1]
    assert settled is False  # the worker recorded it; settling found it gone once unlocked
    assert waited >= 0.3  # it waited for the worker's commit instead of reading around it
    assert Event.objects.filter(message_id="a1").count() == 1
    assert not InboxBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_records_each_row_once_beside_workers_draining_at_the_same_time(
    world, monkeypatch
) -> None:
    for n in range(120):
        accept(world.acme, track("Product Viewed", f"m{n}", anonymousId=f"visitor-{n % 6}"))
    # Every row recorded, by a worker or a settle, counted where both record: a row recorded
    # twice would show here (message-id dedupe would hide it from the events).
    recorded: list[int] = []
    record_rows = inbox._record_rows

    def counting(rows: list[InboxBatch]) -> inbox.DrainResult:
        result = record_rows(rows)
        recorded.extend(row.pk for row in rows)
        return result

    monkeypatch.setattr(inbox, "_record_rows", counting)
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as exc:  # reported below, from the test's thread
            errors.append(exc)
        finally:
            connection.close()

    works: list[Any] = [inbox_drain, inbox_drain]
    for n in range(6):
        works.append(
            lambda n=n: visitor_settle(tenant=world.acme, user_id=None, anonymous_id=f"visitor-{n}")
        )
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(recorded) == len(set(recorded)) == 120
    assert not InboxBatch.objects.exists()
    assert Event.objects.exclude(message_id__startswith="wf:").count() == 120
    assert Contact.objects.count() == 6
