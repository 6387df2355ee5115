"""The ingestion inbox: /v1/* requests are accepted as one row each and recorded by the ingest
worker (audience/inbox.py) in chunks; what an SDK, a shop and an operator can notice of that."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import pytest
import time_machine
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.db import OperationalError, connection
from django.db.models import F
from django.utils.timezone import now
from kombu.exceptions import OperationalError as BrokerError

from audience import inbox, tasks
from audience.inbox import DrainResult, inbox_accept, inbox_drain, inbox_retry
from audience.models import Contact, Event, InboxBatch
from audience.segment_spec import parse_call
from config.celery import app as celery_app
from core import sqlite
from tenants import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=False)

ADMIN_URL = "/admin/audience/inboxbatch/"


class Counts(TypedDict):
    batches: int
    stored: int
    duplicates: int
    failed: int


@pytest.fixture
def keys(world) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "acme": services.api_key_create(tenant=world.acme, kind="write", name="site")[1],
        "globex": services.api_key_create(tenant=world.globex, kind="write", name="site")[1],
    }


@pytest.fixture
def accept(client, keys):  # type: ignore[no-untyped-def]
    """accept(batch, tenant="acme"): POST /v1/batch as that tenant's site, nothing drained."""

    def _accept(batch: list[dict[str, Any]], tenant: str = "acme") -> Any:
        raw = base64.b64encode(f"{keys[tenant]}:".encode()).decode()
        return client.post(
            "/v1/batch",
            data=json.dumps({"batch": batch}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {raw}",
        )

    return _accept


def track(event: str, message_id: str, **fields: object) -> dict[str, object]:
    return {"type": "track", "event": event, "messageId": message_id, **fields}


def identify(message_id: str, **fields: object) -> dict[str, object]:
    return {"type": "identify", "messageId": message_id, **fields}


def counts(*, batches: int = 0, stored: int = 0, duplicates: int = 0, failed: int = 0) -> Counts:
    return Counts(batches=batches, stored=stored, duplicates=duplicates, failed=failed)


def drain() -> Counts:
    """Run the ingest worker's job once; what it reports (requests, events stored, repeated
    messageIds skipped, requests set aside)."""
    result = inbox_drain()
    return counts(
        batches=result.batches,
        stored=result.stored,
        duplicates=result.duplicates,
        failed=result.failed,
    )


def message_ids(contact: Contact) -> set[str]:
    return set(contact.events.values_list("message_id", flat=True))


def test_it_answers_at_once_and_records_when_the_inbox_is_drained(accept, world) -> None:
    response = accept(
        [
            track("Product Viewed", "v1", anonymousId="browser", properties={"sku": "TENT"}),
            identify("i1", anonymousId="browser", userId="u-1", traits={"email": "a@example.com"}),
            track("Order Completed", "o1", userId="u-1"),
        ]
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    waiting = InboxBatch.objects.get()
    assert (waiting.tenant, waiting.size, waiting.failed_at) == (world.acme, 3, None)
    assert not Event.objects.exists()
    assert not Contact.objects.exists()

    assert drain() == counts(batches=1, stored=3, duplicates=0, failed=0)

    contact = Contact.objects.get()
    assert (contact.tenant, contact.user_id, contact.email) == (world.acme, "u-1", "a@example.com")
    assert message_ids(contact) == {"v1", "i1", "o1"}
    assert not InboxBatch.objects.exists()
    assert drain() == counts()  # nothing left


def test_it_drains_every_waiting_request_however_many(accept) -> None:
    for n in range(120):  # more than one chunk's worth of /v1/track-sized requests
        accept([track("Product Viewed", f"m{n}", anonymousId=f"visitor-{n % 3}")])

    assert drain() == counts(batches=120, stored=120)
    assert Event.objects.count() == 120
    assert Contact.objects.count() == 3
    assert not InboxBatch.objects.exists()


def test_it_corrects_clock_skew_and_keeps_the_time_a_request_was_accepted(accept) -> None:
    accepted = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with time_machine.travel(accepted, tick=False):
        # The client's clock runs an hour behind: it sent at 11:00 its time.
        accept(
            [
                track(
                    "Product Viewed",
                    "skew",
                    anonymousId="a",
                    timestamp="2026-11-23T10:59:00Z",
                    sentAt="2026-11-23T11:00:00Z",
                ),
                track("Product Viewed", "no-time", anonymousId="a"),
            ]
        )
    with time_machine.travel(accepted + timedelta(minutes=1), tick=False):
        accept([track("Cart Viewed", "later", anonymousId="a")])

    with time_machine.travel(accepted + timedelta(minutes=30), tick=False):
        inbox_drain()

    times = {
        event.message_id: (event.occurred_at, event.received_at) for event in Event.objects.all()
    }
    assert times == {
        "skew": (accepted - timedelta(minutes=1), accepted),
        "no-time": (accepted, accepted),
        "later": (accepted + timedelta(minutes=1), accepted + timedelta(minutes=1)),
    }


def test_it_keeps_two_tenants_apart_when_drained_together(accept, world) -> None:
    accept([identify("m1", userId="u-1", anonymousId="pc", traits={"email": "a@acme.example"})])
    accept(
        [identify("m1", userId="u-1", anonymousId="pc", traits={"email": "g@globex.example"})],
        tenant="globex",
    )
    accept([track("Product Viewed", "m2", anonymousId="pc")])
    accept([track("Order Completed", "m2", userId="u-1")], tenant="globex")

    assert drain() == counts(batches=4, stored=4, duplicates=0, failed=0)

    acme = Contact.objects.get(tenant=world.acme)
    globex = Contact.objects.get(tenant=world.globex)
    assert (acme.email, globex.email) == ("a@acme.example", "g@globex.example")
    assert set(acme.events.values_list("message_id", "name")) == {
        ("m1", "Identify"),
        ("m2", "Product Viewed"),
    }
    assert set(globex.events.values_list("message_id", "name")) == {
        ("m1", "Identify"),
        ("m2", "Order Completed"),
    }
    assert not Event.objects.exclude(tenant_id=F("contact__tenant_id")).exists()


def test_it_stores_a_message_id_repeated_by_two_requests_once(accept) -> None:
    accept([track("Product Viewed", "same", anonymousId="a")])
    accept(
        [
            track("Product Viewed", "same", anonymousId="a"),
            track("Cart Viewed", "new", anonymousId="a"),
        ]
    )

    assert drain() == counts(batches=2, stored=2, duplicates=1, failed=0)
    # An SDK retrying a request whose answer it lost, after the first one was recorded.
    accept([track("Product Viewed", "same", anonymousId="a")])
    assert drain() == counts(batches=1, stored=0, duplicates=1, failed=0)

    assert Event.objects.filter(message_id="same").count() == 1
    assert Event.objects.count() == 2


def test_it_sets_an_unreadable_row_aside_and_records_the_rest(accept, world) -> None:
    accept([track("Product Viewed", "before", anonymousId="a")])
    broken = InboxBatch.objects.create(
        tenant=world.acme, source="http", received_at=now(), size=1, messages="[{not json"
    )
    accept([track("Product Viewed", "after", anonymousId="a")])

    assert drain() == counts(batches=2, stored=2, duplicates=0, failed=1)

    assert set(Event.objects.values_list("message_id", flat=True)) == {"before", "after"}
    broken.refresh_from_db()
    assert broken.failed_at is not None
    assert broken.attempts == 1
    assert "JSONDecodeError" in broken.error
    assert list(InboxBatch.objects.all()) == [broken]


@pytest.fixture
def globex_unrecordable(monkeypatch, world):  # type: ignore[no-untyped-def]
    """Recording anything for globex raises, until the returned `fix()` is called."""
    real = inbox.calls_record_in_transaction
    broken = {"yes": True}

    def recorder(tenant, calls, source, received_at):  # type: ignore[no-untyped-def]
        if broken["yes"] and tenant == world.globex:
            raise RuntimeError("globex's recorder is broken")
        return real(tenant, calls, source, received_at)

    monkeypatch.setattr(inbox, "calls_record_in_transaction", recorder)

    def fix() -> None:
        broken["yes"] = False

    return fix


def test_it_sets_a_failing_row_aside_without_dropping_or_blocking_the_others(
    accept, world, globex_unrecordable
) -> None:
    accept([track("Product Viewed", "a1", anonymousId="a")])
    accept([track("Product Viewed", "g1", anonymousId="g")], tenant="globex")
    accept([track("Product Viewed", "a2", anonymousId="a")])

    assert drain() == counts(batches=2, stored=2, duplicates=0, failed=1)

    assert set(Event.objects.values_list("message_id", flat=True)) == {"a1", "a2"}
    failed = InboxBatch.objects.get()
    assert failed.tenant == world.globex
    assert failed.failed_at is not None
    assert failed.attempts == 1
    assert failed.error == "RuntimeError: globex's recorder is broken"

    # Later drains leave it alone (no retry storm) and record what came after it.
    accept([track("Product Viewed", "a3", anonymousId="a")])
    assert drain() == counts(batches=1, stored=1, duplicates=0, failed=0)
    failed.refresh_from_db()
    assert (failed.attempts, failed.failed_at is not None) == (1, True)
    assert not Event.objects.filter(tenant=world.globex).exists()


def test_it_never_sets_a_row_aside_because_the_database_failed(accept, world, monkeypatch) -> None:
    accept([track("Product Viewed", "a1", anonymousId="a")])

    def timing_out(tenant, calls, source, received_at):  # type: ignore[no-untyped-def]
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr(inbox, "calls_record_in_transaction", timing_out)
    with pytest.raises(OperationalError):  # the task fails; the next drain tries again
        inbox_drain()
    batch = InboxBatch.objects.get()
    assert (batch.failed_at, batch.attempts, batch.error) == (None, 0, "")

    monkeypatch.undo()
    assert drain() == counts(batches=1, stored=1, duplicates=0, failed=0)


def test_it_records_a_failed_row_once_it_is_retried_after_the_fix(
    accept, world, globex_unrecordable
) -> None:
    accept([track("Product Viewed", "g1", anonymousId="g")], tenant="globex")
    inbox_drain()
    failed = InboxBatch.objects.get()

    globex_unrecordable()
    assert drain() == counts(), "a failed row waits for an operator"
    assert inbox_retry(batch_ids=[failed.pk]) == 1
    assert inbox_retry(batch_ids=[failed.pk]) == 0, "it is already waiting"

    assert drain() == counts(batches=1, stored=1, duplicates=0, failed=0)
    assert Event.objects.get().tenant == world.globex
    assert not InboxBatch.objects.exists()


def test_it_counts_the_attempts_of_a_row_retried_too_soon(accept, globex_unrecordable) -> None:
    accept([track("Product Viewed", "g1", anonymousId="g")], tenant="globex")
    inbox_drain()
    failed = InboxBatch.objects.get()

    inbox_retry(batch_ids=[failed.pk])
    assert drain() == counts(failed=1)

    failed.refresh_from_db()
    assert failed.attempts == 2
    assert failed.failed_at is not None
    assert failed.error == "RuntimeError: globex's recorder is broken"


def test_it_leaves_waiting_rows_alone_when_asked_to_retry_them(accept) -> None:
    accept([track("Product Viewed", "m", anonymousId="a")])
    assert inbox_retry(batch_ids=list(InboxBatch.objects.values_list("pk", flat=True))) == 0
    assert drain()["stored"] == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL; SQLite has one writer"
)
@pytest.mark.django_db(transaction=True)
def test_it_records_each_row_once_when_workers_drain_at_the_same_time(world, published) -> None:
    for n in range(240):
        raw = track("Product Viewed", f"m{n}", anonymousId=f"visitor-{n % 7}")
        inbox_accept(tenant=world.acme, calls=[parse_call(raw)], source="http")
    results: list[DrainResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(inbox_drain())
        except BaseException as exc:  # reported below, from the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(result.batches for result in results) == 240
    assert sum(result.stored for result in results) == 240
    assert Event.objects.count() == 240
    assert Contact.objects.count() == 7  # one per visitor, though chunks raced to create them
    assert not InboxBatch.objects.exists()


# --- waking the ingest worker --------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch) -> list[float | None]:
    """The countdown of every inbox_drain task published, with Celery not eager."""
    assert not celery_app.conf.task_always_eager
    calls: list[float | None] = []

    def apply_async(*args: object, countdown: float | None = None, **kwargs: object) -> None:
        calls.append(countdown)

    monkeypatch.setattr(tasks.inbox_drain, "apply_async", apply_async)
    return calls


def test_it_wakes_the_worker_at_once_then_at_most_once_more_per_interval(
    published, monkeypatch
) -> None:
    monkeypatch.setattr(inbox, "WAKE_INTERVAL", 60.0)  # the whole burst falls in one interval
    wake = inbox._Waker()

    for _ in range(500):
        wake()

    assert len(published) == 2
    assert published[0] is None  # the first request's drain starts now
    assert 0 < published[1] <= 60.0  # one more, due when the interval ends, covers the rest


def test_it_wakes_the_worker_at_most_twice_per_interval_from_many_threads(
    published, monkeypatch
) -> None:
    monkeypatch.setattr(inbox, "WAKE_INTERVAL", 60.0)
    wake = inbox._Waker()

    def burst() -> None:
        for _ in range(100):
            wake()

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(published) == 2
    assert published[0] is None


def test_it_wakes_the_worker_at_once_again_after_a_quiet_spell(published, monkeypatch) -> None:
    monkeypatch.setattr(inbox, "WAKE_INTERVAL", 0.05)
    wake = inbox._Waker()
    wake()
    wake()
    time.sleep(0.15)  # a few intervals without a request
    wake()

    assert published == [None, pytest.approx(0.05, abs=0.05), None]


def test_it_keeps_to_the_default_interval_in_a_real_burst(published) -> None:
    wake = inbox._Waker()

    begin = time.monotonic()
    for _ in range(2_000):
        wake()
    elapsed = time.monotonic() - begin

    assert published[0] is None
    assert len(published) <= 2 + elapsed / inbox.WAKE_INTERVAL + 1
    assert all(countdown is None or countdown <= inbox.WAKE_INTERVAL for countdown in published)


def test_it_accepts_a_request_while_the_broker_is_down(
    accept, monkeypatch, django_capture_on_commit_callbacks, caplog
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.inbox_drain, "apply_async", unreachable)
    monkeypatch.setattr(inbox, "inbox_wake", inbox._Waker())

    with django_capture_on_commit_callbacks(execute=True):
        response = accept([track("Product Viewed", "m", anonymousId="a")])

    assert response.status_code == 200
    assert InboxBatch.objects.count() == 1
    assert [r.levelname for r in caplog.records if r.name == "audience.inbox"] == ["WARNING"]

    tasks.inbox_drain()  # what beat's audience.inbox-drain runs every few seconds
    assert Event.objects.filter(message_id="m").exists()
    assert not InboxBatch.objects.exists()


def test_it_stops_asking_a_broker_that_is_down_for_a_while(monkeypatch) -> None:
    attempts: list[object] = []

    def unreachable(*args: object, **kwargs: object) -> None:
        attempts.append(kwargs)
        raise BrokerError("Connection refused.")

    monkeypatch.setattr(tasks.inbox_drain, "apply_async", unreachable)
    waker = inbox._Waker()
    for _ in range(50):  # a burst of requests while the broker is down
        waker()
    assert len(attempts) == 1, "each request would wait on the broker"
    assert attempts[0] == {"countdown": None, "retry": False}  # fail fast, no retry loop


def test_it_hands_its_worker_back_after_its_time_and_queues_the_rest(accept, monkeypatch) -> None:
    for n in range(120):  # more than one chunk
        accept([track("Product Viewed", f"m{n}", anonymousId=f"a{n % 7}")])
    continued: list[object] = []
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)
    monkeypatch.setattr(tasks.inbox_drain, "delay", lambda: continued.append(True))

    tasks.inbox_drain()  # as the worker runs it

    left = InboxBatch.objects.count()
    assert 0 < left < 120, "one chunk, then it stops"
    assert continued == [True], "and queues its continuation"
    assert inbox_drain().batches == left  # which records the rest


def test_it_drains_inline_when_celery_is_eager(
    accept, ingest_inline, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert accept([track("Product Viewed", "m", anonymousId="a")]).status_code == 200

    assert Event.objects.filter(message_id="m").exists()
    assert not InboxBatch.objects.exists()


def test_it_schedules_a_periodic_drain_as_a_safety_net() -> None:
    schedules = {
        entry["task"]: entry["schedule"] for entry in celery_app.conf.beat_schedule.values()
    }
    assert schedules["audience.tasks.inbox_drain"] <= 10.0
    assert celery_app.amqp.router.route({}, "audience.tasks.inbox_drain")["queue"].name == "ingest"


# --- the admin -----------------------------------------------------------------------------------


@pytest.fixture
def failed_row(accept, globex_unrecordable) -> InboxBatch:
    accept([track("Product Viewed", "g1", anonymousId="g")], tenant="globex")
    accept([track("Product Viewed", "a1", anonymousId="a")])
    inbox_drain()
    globex_unrecordable()  # the operator fixed the cause
    return InboxBatch.objects.get()


def test_it_lists_failed_rows_with_their_reason_for_operators(login, failed_row) -> None:
    admin = login(UserFactory(is_staff=True, is_superuser=True))

    listing = admin.get(ADMIN_URL, {"state": "failed"})
    assert listing.status_code == 200
    assert f'value="{failed_row.pk}"' in listing.content.decode()
    assert admin.get(ADMIN_URL, {"state": "waiting"}).context["cl"].result_count == 0

    detail = admin.get(f"{ADMIN_URL}{failed_row.pk}/change/")
    assert detail.status_code == 200
    assert "globex&#x27;s recorder is broken" in detail.content.decode()


def test_it_retries_failed_rows_from_the_admin(
    login, failed_row, world, ingest_inline, django_capture_on_commit_callbacks
) -> None:
    admin = login(UserFactory(is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            ADMIN_URL,
            {"action": "retry_selected", helpers.ACTION_CHECKBOX_NAME: [failed_row.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 failed batch(es) queued again" in response.content.decode()
    assert Event.objects.filter(tenant=world.globex, message_id="g1").exists()
    assert not InboxBatch.objects.exists()


def test_it_shows_staff_only_their_own_tenants_rows(login, world, accept, failed_row) -> None:
    accept([track("Product Viewed", "a2", anonymousId="a")])  # acme's, waiting
    world.alice.is_staff = True
    world.alice.save()
    world.alice.user_permissions.set(Permission.objects.filter(codename="view_inboxbatch"))
    client = login(world.alice)  # acme's admin; the failed row is globex's

    listing = client.get(ADMIN_URL).context["cl"]
    assert [row.tenant for row in listing.result_list] == [world.acme]
    assert client.get(f"{ADMIN_URL}{failed_row.pk}/change/").status_code == 404
    client.post(
        ADMIN_URL, {"action": "retry_selected", helpers.ACTION_CHECKBOX_NAME: [failed_row.pk]}
    )
    failed_row.refresh_from_db()
    assert failed_row.failed_at is not None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's one write lock")
def test_it_keeps_its_transactions_short_on_sqlite(accept, monkeypatch) -> None:
    for n in range(120):
        accept([track("Product Viewed", f"m{n}", anonymousId=f"a{n % 7}")])
    claimed: list[int] = []
    real = inbox._record_claimed

    def recorded(limit: int, *args: Any) -> DrainResult:
        claimed.append(limit)
        return real(limit, *args)

    monkeypatch.setattr(inbox, "_record_claimed", recorded)
    monkeypatch.setattr(inbox, "SQLITE_CHUNK_SECONDS", 1e-9)  # a machine that records slowly
    monkeypatch.setattr(sqlite, "TURN_SECONDS", 0.0)

    assert drain() == counts(batches=120, stored=120)
    # A first chunk at the first guess, then chunks sized to the time they take (one row
    # here), so that pages waiting to write wait for a moment, not for the whole backlog.
    assert claimed[0] == 50
    assert set(claimed[1:]) == {1}
