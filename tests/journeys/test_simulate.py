"""The editor's test run: the path a contact would take, without writing anything, and "send me
these messages" to the marketer's own address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience.models import Consent, Contact, Event
from journeys import presets, services, simulate
from journeys.models import Enrollment, JourneyVersion, Step
from messaging.models import Delivery

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; the tenant's zone is UTC


def _contact(world, **fields):  # type: ignore[no-untyped-def]
    defaults = {"email": "ann@example.com", "first_name": "Ann", "email_consent": Consent.GRANTED}
    return Contact.objects.create(tenant=world.acme, **{**defaults, **fields})


def _event(contact, event_name, at, **properties):  # type: ignore[no-untyped-def]
    return Event.objects.create(
        tenant=contact.tenant,
        contact=contact,
        name=event_name,
        properties=properties,
        occurred_at=at,
        received_at=at,
    )


def _texts(steps):  # type: ignore[no-untyped-def]
    return [(s.node_key, s.outcome, s.text) for s in steps]


def test_it_walks_cart_abandonment_for_a_contact_with_consent(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    ann = _contact(world, cart=[{"sku": "TENT-1", "quantity": 1}])
    _event(ann, "Product Added", NOW - timedelta(minutes=5), sku="TENT-1", cart_id="c-1")

    steps = simulate.simulate(tenant=world.acme, journey=journey, contact=ann, now=NOW)

    assert [(s.node_key, s.outcome) for s in steps] == [
        ("added", "follow"),
        ("checkout_30m", "wait"),
        ("cart_email", "follow"),
        ("checkout_24h", "wait"),
        ("cart_push", "follow"),
        ("order", "wait"),
        ("order", "end"),
    ]
    enter, wait, email, wait_day, push, goal, end = steps
    assert enter.text == (
        "Enters: When “Product Added” happens. With their latest “Product Added” "
        "(Mon 02 Mar 2026, 09:55 UTC)."
    )
    assert wait.text == (
        "Would wait up to 30 minutes for “Order Completed” (the same cart). Assuming it "
        "doesn't happen, goes on by “Timed out” at Mon 02 Mar 2026, 10:30 UTC."
    )
    assert email.text == "Would email “Cart abandonment: your cart is waiting” to ann@example.com."
    assert (email.at, email.channel, email.skipped) == (NOW + timedelta(minutes=30), "email", "")
    assert email.template_id
    assert wait_day.text.startswith("Would wait up to 24 hours for “Order Completed”")
    assert push.text == (
        "Would send the push “Cart abandonment: reminder (push)” to their browsers. "
        "It would be skipped: no active push subscription."
    )
    assert push.skipped == "no active push subscription"
    assert push.at == NOW + timedelta(hours=24, minutes=30)
    # The goal's window counts from entering: three days.
    assert goal.text.startswith("Goal: would wait up to ")
    assert "“Not converted” at Thu 05 Mar 2026, 10:00 UTC" in goal.text
    assert end.text == "The path ends here: they would complete the journey."


def test_it_says_an_email_would_be_skipped_without_consent(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    bob = _contact(world, email="bob@example.com", email_consent=Consent.REVOKED)

    steps = simulate.simulate(tenant=world.acme, journey=journey, contact=bob, now=NOW)

    assert "No “Product Added” of theirs on record" in steps[0].text
    email = next(s for s in steps if s.node_key == "cart_email")
    assert email.skipped == "unsubscribed"
    assert email.text.endswith("It would be skipped: unsubscribed.")


def test_it_takes_the_branch_the_contact_would_take(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="onboarding_welcome")
    buyer, browser = _contact(world), _contact(world, email="cy@example.com", first_name="Cy")
    entered = NOW - timedelta(days=6)
    _event(buyer, "Order Completed", NOW - timedelta(days=2), total=80)

    bought = simulate.simulate(tenant=world.acme, journey=journey, contact=buyer, now=entered)
    branch = next(s for s in bought if s.node_key == "ordered")
    assert (branch.port, branch.port_label) == ("yes", "Yes")
    assert branch.text == "Branch: Yes — they did “Order Completed” since entering."
    assert bought[-1].outcome == "end"  # nothing on "yes": they complete
    assert bought[-1].at == entered + timedelta(days=5)

    browsed = simulate.simulate(tenant=world.acme, journey=journey, contact=browser, now=entered)
    assert [s.node_key for s in browsed if s.outcome == "follow"] == [
        "signup",
        "welcome",
        "tips",
        "ordered",
        "can_push",
        "discount_email",
    ]
    can_push = next(s for s in browsed if s.node_key == "can_push")
    assert can_push.text == "Branch: No — they don't match the condition."


def test_it_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="nps_survey")
    services.journey_publish(journey=journey)
    ann = _contact(world)
    _event(ann, "Order Completed", NOW - timedelta(days=1), order_id="o-1")
    counts = (Enrollment.objects.count(), Step.objects.count(), Delivery.objects.count())

    with CaptureQueriesContext(connection) as queries:
        steps = simulate.simulate(tenant=world.acme, journey=journey, contact=ann, now=NOW)

    assert [s.node_key for s in steps] == [
        "ordered",
        "wait_14d",
        "survey",
        "answered",
        "answered",  # timed out: nothing on that port
    ]
    assert "Assuming it doesn't happen" in steps[3].text
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert (Enrollment.objects.count(), Step.objects.count(), Delivery.objects.count()) == counts


def test_it_tests_the_published_version_or_the_draft(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="post_purchase")
    published = services.journey_publish(journey=journey)
    services.node_update(journey=journey, key="wait_24h", settings={"amount": 2, "unit": "hours"})
    ann = _contact(world)

    draft = simulate.simulate(tenant=world.acme, journey=journey, contact=ann, now=NOW)
    live = simulate.simulate(
        tenant=world.acme, journey=journey, contact=ann, now=NOW, version=published
    )
    assert draft[1].text == "Would wait 2 hours (until Mon 02 Mar 2026, 12:00 UTC)."
    assert live[1].text == "Would wait 24 hours (until Tue 03 Mar 2026, 10:00 UTC)."
    assert JourneyVersion.objects.filter(journey=journey).count() == 2


def test_it_stops_at_an_unfinished_step(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="post_purchase")
    services.node_update(journey=journey, key="thanks", settings={"template": ""})
    steps = simulate.simulate(tenant=world.acme, journey=journey, contact=_contact(world), now=NOW)
    assert steps[-1].node_key == "thanks"
    assert steps[-1].outcome == "stop"
    assert steps[-1].text.startswith("This step isn't finished: ")


def test_it_refuses_another_tenants_contact(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="post_purchase")
    stranger = Contact.objects.create(tenant=world.globex, email="x@example.com")
    with pytest.raises(ValueError):
        simulate.simulate(tenant=world.acme, journey=journey, contact=stranger)


def test_it_sends_the_paths_emails_to_the_marketer(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="onboarding_welcome")
    ann = _contact(world)
    mail.outbox.clear()

    sent = simulate.test_messages_send(
        tenant=world.acme, journey=journey, contact=ann, to_user=world.dave, now=NOW
    )

    # Welcome, tips, and the discount by email (no push subscription): three emails.
    assert sent == 3
    assert [m.to for m in mail.outbox] == [["dave@example.com"]] * 3
    assert mail.outbox[0].subject == "[Test] Welcome to Acme, Ann!"
    assert mail.outbox[2].subject == "[Test] Ann, 10% off your first order"
    assert not Delivery.objects.exists()  # a test is not a decided message


def test_it_refuses_to_send_to_an_unconfirmed_address(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="onboarding_welcome")
    world.dave.email_verified_at = None
    world.dave.save(update_fields=["email_verified_at"])
    mail.outbox.clear()

    with pytest.raises(simulate.TestSendRefused) as refused:
        simulate.test_messages_send(
            tenant=world.acme, journey=journey, contact=_contact(world), to_user=world.dave
        )
    assert "confirm your email address" in refused.value.message
    assert mail.outbox == []


def test_it_stops_at_the_send_test_limit(world, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SEND_TESTS_PER_USER_HOUR = 2
    journey = presets.preset_create(tenant=world.acme, key="onboarding_welcome")
    mail.outbox.clear()

    with pytest.raises(simulate.TestSendRefused) as refused:
        simulate.test_messages_send(
            tenant=world.acme, journey=journey, contact=_contact(world), to_user=world.dave
        )
    assert refused.value.sent == 2
    assert len(mail.outbox) == 2


def _journey(world, nodes, edges):  # type: ignore[no-untyped-def]
    return services.journey_create(
        tenant=world.acme,
        name="Custom",
        graph={
            "nodes": [{"key": k, "kind": kind, "settings": s} for k, kind, s in nodes],
            "edges": [{"source": s, "port": p, "target": t} for s, p, t in edges],
        },
    )


def test_it_takes_the_same_random_path_for_a_contact_every_run(world) -> None:  # type: ignore[no-untyped-def]
    journey = _journey(
        world,
        [
            ("t", "trigger_api", {}),
            ("split", "branch_split", {"percentages": [50, 50]}),
            ("a", "action_list", {"attribute": "tags", "operation": "add", "value": "a"}),
            ("b", "action_update", {"field": "attributes.group", "value": "b"}),
        ],
        [("t", "next", "split"), ("split", "a", "a"), ("split", "b", "b")],
    )
    ann = _contact(world)
    runs = [simulate.simulate(tenant=world.acme, journey=journey, contact=ann) for _ in range(3)]
    assert len({tuple(s.node_key for s in run) for run in runs}) == 1
    split, action = runs[0][1], runs[0][2]
    assert split.text.startswith(f"Branch: {split.port.upper()} (50%) — the random split picks")
    assert action.text in ("Would add “a” to tags.", "Would set attributes.group to “b”.")
    assert Contact.objects.get(pk=ann.pk).attributes == {}


def test_it_stops_a_path_that_goes_round(world) -> None:  # type: ignore[no-untyped-def]
    journey = _journey(
        world,
        [
            ("t", "trigger_api", {}),
            ("wait", "wait_delay", {"amount": 1, "unit": "days"}),
            ("tag", "action_list", {"attribute": "tags", "operation": "add", "value": "x"}),
        ],
        [("t", "next", "wait"), ("wait", "next", "tag"), ("tag", "next", "wait")],
    )
    steps = simulate.simulate(tenant=world.acme, journey=journey, contact=_contact(world), now=NOW)
    assert len(steps) == simulate.MAX_STEPS + 1
    assert steps[-1].text == "Stopped after 50 steps: the path goes round."
    assert steps[-2].at == NOW + timedelta(days=24)


def test_it_renders_test_messages_with_the_triggering_event(world) -> None:  # type: ignore[no-untyped-def]
    journey = presets.preset_create(tenant=world.acme, key="browse_abandonment")
    ann = _contact(world)
    _event(ann, "Product Viewed", NOW - timedelta(hours=2), sku="TENT-1", name="Trail Tent")
    mail.outbox.clear()

    sent = simulate.test_messages_send(
        tenant=world.acme, journey=journey, contact=ann, to_user=world.dave, now=NOW
    )

    assert sent == 1
    assert mail.outbox[0].subject == "[Test] Still thinking about Trail Tent?"
