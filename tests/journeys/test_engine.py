"""The engine end to end: events enter contacts, waits hold them, messages are decided once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from audience.models import Contact
from audience.services import Fact, events_record
from journeys import engine, entry, reactions
from journeys.models import Enrollment, Journey, Step
from messaging.models import Delivery

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def track(tenant: Any, contact: Any, name: str, at: datetime, **properties: Any) -> list[int]:
    """Record an event and let the engine see it, as the events task does."""
    ids = events_record(
        tenant=tenant,
        facts=[Fact(contact.pk, name, str(uuid.uuid4()), "test", properties, at)],
    )
    reactions.events_process(tenant=tenant, event_ids=ids, now=at)
    return ids


def cart_journey(factory: Any, email: Any, **kw: Any) -> Journey:
    """Product Added → wait 30 min for the same cart's order → else email → exit on order."""
    return factory(
        {
            "t": ("trigger_event", {"event": "Product Added", "filters": []}),
            "w": (
                "wait_event",
                {"event": "Order Completed", "amount": 30, "unit": "minutes", "match": "cart"},
            ),
            "m": ("action_email", {"template": str(email.public_id), "category": "marketing"}),
        },
        "t.next>w w.timeout>m",
        **kw,
    )


def test_it_emails_the_cart_once_when_no_order_comes_within_30_minutes(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email)
    track(world.acme, contact, "Product Added", T0, cart_id="c1", sku="S1")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.WAITING
    assert enrollment.wait_match == {"cart_id": "c1"}
    assert enrollment.due_at == T0 + timedelta(minutes=30)

    assert engine.advance_due(now=T0 + timedelta(minutes=29)) == 0
    assert engine.advance_due(now=T0 + timedelta(minutes=31)) == 1
    assert engine.advance_due(now=T0 + timedelta(minutes=40)) == 0

    delivery = Delivery.objects.get()
    assert delivery.source == f"journey:{journey.public_id}"
    assert delivery.event["properties"]["cart_id"] == "c1"
    assert delivery.data["cart_id"] == "c1"
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED
    results = list(Step.objects.filter(enrollment=enrollment).values_list("result", flat=True))
    assert results == ["entered", "followed", "waiting", "followed", "sent", "completed"]


def test_it_wakes_a_keyed_wait_only_for_the_same_cart(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email)
    track(world.acme, contact, "Product Added", T0, cart_id="c1")
    track(world.acme, contact, "Order Completed", T0 + timedelta(minutes=5), cart_id="other")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.WAITING

    track(world.acme, contact, "Order Completed", T0 + timedelta(minutes=6), cart_id="c1")
    enrollment.refresh_from_db()
    # Woken and run at once: the "event" port has no edge, so the path ends, with no email.
    assert enrollment.state == Enrollment.State.COMPLETED
    assert Step.objects.filter(enrollment=enrollment, port="event").exists()
    assert engine.advance_due(now=T0 + timedelta(hours=1)) == 0
    assert not Delivery.objects.exists()


def test_it_counts_a_goal_with_its_revenue_and_exits(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Product Added"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
            "m": ("action_email", {"template": str(email.public_id)}),
            "g": (
                "goal",
                {
                    "event": "Order Completed",
                    "amount": 7,
                    "unit": "days",
                    "revenue_property": "revenue",
                },
            ),
        },
        "t.next>w w.next>m m.next>g",
        exit_on_goal=True,
    )
    track(world.acme, contact, "Product Added", T0)
    track(world.acme, contact, "Order Completed", T0 + timedelta(hours=2), revenue="49.90")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.CONVERTED
    assert enrollment.revenue == Decimal("49.90")
    assert enrollment.converted_at == T0 + timedelta(hours=2)
    assert engine.advance_due(now=T0 + timedelta(days=2)) == 0
    assert not Delivery.objects.exists()


def test_it_follows_the_converted_port_of_a_goal_it_waits_at(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "g": ("goal", {"event": "Order Completed", "amount": 7, "unit": "days"}),
            "m": ("action_email", {"template": str(email.public_id)}),
        },
        "t.next>g g.converted>m",
        exit_on_goal=False,
    )
    track(world.acme, contact, "Signed Up", T0)
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.node_key) == (Enrollment.State.WAITING, "g")
    track(world.acme, contact, "Order Completed", T0 + timedelta(days=1), revenue=10)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED
    assert enrollment.revenue == Decimal("10.00")
    assert Delivery.objects.count() == 1


def test_it_ends_open_enrollments_on_an_exit_event(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email, exit_events=["Unsubscribed"])
    track(world.acme, contact, "Product Added", T0, cart_id="c1")
    track(world.acme, contact, "Unsubscribed", T0 + timedelta(minutes=1))
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.EXITED
    assert engine.advance_due(now=T0 + timedelta(hours=1)) == 0
    assert not Delivery.objects.exists()


def test_it_applies_trigger_filters(world: Any, journey_factory: Any, contact: Any) -> None:
    journey = journey_factory(
        {
            "t": (
                "trigger_event",
                {
                    "event": "Order Completed",
                    "filters": [{"property": "total", "operator": "gt", "value": 50}],
                },
            ),
            "x": ("exit", {}),
        },
        "t.next>x",
        reentry="always",
    )
    track(world.acme, contact, "Order Completed", T0, total=20)
    assert not Enrollment.objects.filter(journey=journey).exists()
    track(world.acme, contact, "Order Completed", T0, total=80)
    assert Enrollment.objects.get(journey=journey).state == Enrollment.State.COMPLETED


@pytest.mark.parametrize(
    ("reentry", "days", "later", "expected"),
    [
        ("never", None, timedelta(days=100), 1),
        ("always", None, timedelta(minutes=1), 2),
        ("after", 7, timedelta(days=3), 1),
        ("after", 7, timedelta(days=8), 2),
    ],
)
def test_it_honours_the_reentry_rule(
    world: Any,
    journey_factory: Any,
    contact: Any,
    reentry: str,
    days: int | None,
    later: timedelta,
    expected: int,
) -> None:
    journey = journey_factory(
        {"t": ("trigger_event", {"event": "Signed Up"}), "x": ("exit", {})},
        "t.next>x",
        reentry=reentry,
        reentry_days=days,
    )
    track(world.acme, contact, "Signed Up", T0)
    track(world.acme, contact, "Signed Up", T0 + later)
    assert Enrollment.objects.filter(journey=journey).count() == expected


def test_it_keeps_one_open_enrollment_and_the_maximum(world: Any, journey_factory: Any) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
        },
        "t.next>w",
        reentry="always",
        max_enrollments=2,
    )
    people = [Contact.objects.create(tenant=world.acme, email=f"p{i}@x.io") for i in range(3)]
    for person in people:
        track(world.acme, person, "Signed Up", T0)
        track(world.acme, person, "Signed Up", T0)  # open already: no second one
    assert Enrollment.objects.filter(journey=journey).count() == 2


def test_an_event_of_another_tenant_never_enrolls(world: Any, journey_factory: Any) -> None:
    journey = journey_factory(
        {"t": ("trigger_event", {"event": "Signed Up"}), "x": ("exit", {})}, "t.next>x"
    )
    stranger = Contact.objects.create(tenant=world.globex, email="g@x.io")
    track(world.globex, stranger, "Signed Up", T0)
    assert not Enrollment.objects.filter(journey=journey).exists()
    with pytest.raises(ValueError):
        entry.enrollment_start(tenant=world.acme, journey=journey, contact=stranger, context={})


def test_a_paused_journey_holds_its_people_and_sends_nothing_twice_on_resume(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email)
    track(world.acme, contact, "Product Added", T0, cart_id="c1")
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.PAUSED)
    assert engine.advance_due(now=T0 + timedelta(hours=1)) == 0
    other = Contact.objects.create(tenant=world.acme, email="b@x.io")
    track(world.acme, other, "Product Added", T0 + timedelta(hours=1), cart_id="c2")
    assert Enrollment.objects.filter(journey=journey).count() == 1  # no one enters

    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.LIVE)
    assert engine.advance_due(now=T0 + timedelta(hours=2)) == 1
    assert engine.advance_due(now=T0 + timedelta(hours=3)) == 0
    assert Delivery.objects.count() == 1


def test_a_failed_step_keeps_its_reason_and_can_be_retried(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "m": ("action_email", {"template": str(uuid.uuid4())}),
        },
        "t.next>m",
    )
    track(world.acme, contact, "Signed Up", T0)
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.FAILED
    assert "template" in enrollment.failure
    # The template is fixed; the retry re-runs the step.
    from journeys.models import Node

    Node.objects.filter(key="m").update(settings={"template": str(email.public_id)})
    assert engine.enrollments_retry(tenant=world.acme, enrollments=[enrollment], now=T0) == 1
    assert Step.objects.filter(enrollment=enrollment, result="retried").exists()
    assert engine.advance_due(now=T0 + timedelta(seconds=1)) == 1
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED
    assert Delivery.objects.count() == 1


def test_the_recorded_events_signal_runs_the_engine(
    world: Any,
    journey_factory: Any,
    email: Any,
    contact: Any,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "m": ("action_email", {"template": str(email.public_id)}),
        },
        "t.next>m",
    )
    with django_capture_on_commit_callbacks(execute=True):
        events_record(
            tenant=world.acme, facts=[Fact(contact.pk, "Signed Up", "k1", "test", {}, None)]
        )
    assert Enrollment.objects.get(journey=journey).state == Enrollment.State.COMPLETED
    assert Delivery.objects.count() == 1


def test_a_journey_email_to_a_contact_over_the_frequency_cap_is_skipped(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    from django.utils import timezone

    from messaging import outbox, policy
    from messaging.models import SendingPolicy

    at = timezone.now()

    SendingPolicy.objects.update_or_create(
        tenant=world.acme, defaults={"frequency_cap": 1, "frequency_window_hours": 24}
    )
    Delivery.objects.create(
        tenant=world.acme,
        contact=contact,
        channel="email",
        template=email,
        content=email.snapshot(),
        source="campaign:x",
        idempotency_key="earlier",
        status=Delivery.Status.SENT,
        sent_at=at - timedelta(hours=1),
    )
    journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "m": ("action_email", {"template": str(email.public_id)}),
        },
        "t.next>m",
    )
    track(world.acme, contact, "Signed Up", at)
    batch = outbox.claim(
        channel="email", limit=10, token=uuid.uuid4(), at=at + timedelta(minutes=1)
    )
    verdicts = policy.decide(batch, at=at + timedelta(minutes=1))
    (journey_delivery,) = [d for d in batch if d.source.startswith("journey:")]
    verdict = verdicts[journey_delivery.pk]
    assert verdict.action == "skip"
    assert "frequency cap" in verdict.reason


def test_merging_contacts_moves_enrollments_and_exits_duplicates(
    world: Any, journey_factory: Any
) -> None:
    a = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
        },
        "t.next>w",
    )
    b = journey_factory(
        {
            "t": ("trigger_event", {"event": "Joined"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
        },
        "t.next>w",
    )
    anon = Contact.objects.create(tenant=world.acme)
    known = Contact.objects.create(tenant=world.acme, email="k@x.io")
    track(world.acme, anon, "Signed Up", T0)
    track(world.acme, anon, "Joined", T0)
    track(world.acme, known, "Signed Up", T0)
    reactions.contacts_merge(tenant=world.acme, merged={anon.pk: known.pk})
    assert Enrollment.objects.filter(contact=anon).count() == 0
    states = dict(Enrollment.objects.filter(contact=known, journey=a).values_list("pk", "state"))
    assert sorted(states.values()) == ["active", "exited"]
    assert Enrollment.objects.get(contact=known, journey=b).state == "active"


def test_an_order_that_is_both_goal_and_exit_event_counts_as_a_conversion(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Product Added"}),
            "w": ("wait_delay", {"amount": 1, "unit": "days"}),
            "g": ("goal", {"event": "Order Completed", "amount": 7, "unit": "days"}),
        },
        "t.next>w w.next>g",
        exit_events=["Order Completed"],
        exit_on_goal=True,
    )
    track(world.acme, contact, "Product Added", T0)
    track(world.acme, contact, "Order Completed", T0 + timedelta(hours=1), revenue=30)
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.revenue) == (Enrollment.State.CONVERTED, Decimal("30"))


def test_an_order_recorded_with_the_add_to_cart_in_one_call_ends_the_journey_at_once(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email, exit_events=["Order Completed"])
    ids = events_record(
        tenant=world.acme,
        facts=[
            Fact(contact.pk, "Product Added", "a-1", "test", {"cart_id": "c-1"}, T0),
            Fact(contact.pk, "Order Completed", "o-1", "test", {"cart_id": "c-1"}, T0),
        ],
    )
    # One ingestion chunk announces both: the order follows the trigger that enrolled her.
    reactions.events_process(tenant=world.acme, event_ids=ids, now=T0)
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.EXITED
    engine.advance_due(now=T0 + timedelta(hours=1))
    assert not Delivery.objects.exists()


def test_an_order_recorded_after_the_trigger_counts_even_when_looked_at_later(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = cart_journey(journey_factory, email, exit_events=["Order Completed"])
    with time_machine.travel(T0, tick=False):  # both received at T0
        [added] = events_record(
            tenant=world.acme,
            facts=[Fact(contact.pk, "Product Added", "a-1", "test", {"cart_id": "c-1"}, T0)],
        )
        [ordered] = events_record(
            tenant=world.acme,
            facts=[Fact(contact.pk, "Order Completed", "o-1", "test", {"cart_id": "c-1"}, T0)],
        )
    # The engine's queue was behind: both tasks run a minute later, in order.
    late = T0 + timedelta(minutes=1)
    reactions.events_process(tenant=world.acme, event_ids=[added], now=late)
    reactions.events_process(tenant=world.acme, event_ids=[ordered], now=late)
    assert Enrollment.objects.get(journey=journey).state == Enrollment.State.EXITED


def test_the_same_events_looked_at_twice_enroll_once_even_where_re_entry_is_allowed(
    world: Any, journey_factory: Any, email: Any, contact: Any
) -> None:
    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Order Completed", "filters": []}),
            "m": ("action_email", {"template": str(email.public_id), "category": "marketing"}),
        },
        "t.next>m",
        reentry="always",
    )
    ids = track(world.acme, contact, "Order Completed", T0)
    assert Enrollment.objects.get(journey=journey).state == Enrollment.State.COMPLETED
    # A redelivered task (the worker died before acknowledging it) sees the same event again.
    reactions.events_process(tenant=world.acme, event_ids=ids, now=T0 + timedelta(seconds=5))
    assert Enrollment.objects.filter(journey=journey).count() == 1
    assert Delivery.objects.count() == 1
    # A new order is a new run.
    track(world.acme, contact, "Order Completed", T0 + timedelta(minutes=1))
    assert Enrollment.objects.filter(journey=journey).count() == 2


def test_the_signal_finds_events_months_apart_in_one_call(
    world: Any,
    journey_factory: Any,
    email: Any,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The engine reads the announced events within their time range (the events table is
    # partitioned by month): a backfilled event two years back and one of today, recorded in
    # one call, must both be found.
    from audience.models import Contact

    journey = journey_factory(
        {
            "t": ("trigger_event", {"event": "Signed Up"}),
            "m": ("action_email", {"template": str(email.public_id)}),
        },
        "t.next>m",
    )
    old = Contact.objects.create(tenant=world.acme, email="old@example.com")
    new = Contact.objects.create(tenant=world.acme, email="new@example.com")
    today = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        events_record(
            tenant=world.acme,
            facts=[
                Fact(old.pk, "Signed Up", "k-old", "test", {}, today - timedelta(days=730)),
                Fact(new.pk, "Signed Up", "k-new", "test", {}, today),
            ],
        )
    entered = set(Enrollment.objects.filter(journey=journey).values_list("contact_id", flat=True))
    assert entered == {old.pk, new.pk}
    assert Delivery.objects.count() == 2
