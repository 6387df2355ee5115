"""Dispatch: who is frozen into an occurrence, who gets which variant, who is held out, when each
is due, and how they reach the outbox (once, only while the campaign sends)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection

from audience.models import Event
from campaigns import dispatch, services
from campaigns.models import Campaign, Occurrence, Recipient
from messaging import outcomes
from messaging.models import Delivery, Suppression
from messaging.services import deliveries_insert
from tests.campaigns.conftest import email_template, outbox_sent, people, segment_of

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)


def started(campaign: Campaign, at: datetime = T0) -> Occurrence:
    with time_machine.travel(at, tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
        occurrence = dispatch.campaign_start_due(campaign=campaign, at=at)
    assert occurrence is not None
    return occurrence


def frozen(occurrence: Occurrence) -> set[int]:
    return set(Recipient.objects.filter(occurrence=occurrence).values_list("contact_id", flat=True))


def test_it_freezes_the_segments_members_less_the_excluded_and_the_unreachable(
    world: Any, campaign_factory: Any
) -> None:
    fans = people(world.acme, 4)
    gone, suppressed, no_address, excluded = people(world.acme, 4)
    gone.email_consent = "revoked"
    gone.save()
    Suppression.objects.create(tenant=world.acme, address=suppressed.email, reason="bounced")
    no_address.email = ""
    no_address.save()
    other_segment = segment_of(world.acme, people(world.acme, 2))
    campaign = campaign_factory(
        segments=[segment_of(world.acme, [*fans, gone, suppressed, no_address, excluded])],
        exclude_segments=[segment_of(world.acme, [excluded])],
    )
    occurrence = started(campaign)
    assert frozen(occurrence) == {c.pk for c in fans}
    assert other_segment  # its members are not the campaign's
    assert (occurrence.recipient_count, occurrence.holdout_count) == (4, 0)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING


def test_a_contact_in_two_of_its_segments_is_frozen_once(world: Any, campaign_factory: Any) -> None:
    both = people(world.acme, 1)
    campaign = campaign_factory(
        segments=[segment_of(world.acme, both), segment_of(world.acme, both)]
    )
    assert frozen(started(campaign)) == {both[0].pk}


def test_it_releases_due_recipients_into_the_outbox_once_with_the_campaigns_keys(
    world: Any, campaign_factory: Any
) -> None:
    members = people(world.acme, 7)
    template = email_template(world.acme)
    # One a second from T0: the first is due at the start (on PostgreSQL the freeze's own
    # statement decides it), the others by the release in chunks.
    campaign = campaign_factory(
        contacts=members, variants=[(template, 100)], throttle_per_minute=60
    )
    occurrence = started(campaign)
    at_start = Recipient.objects.filter(released=True).count()
    assert at_start <= 1
    calls = []
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        while released := dispatch.recipients_release(occurrence=occurrence, limit=2):
            calls.append(released)
    assert max(calls) == 2 and at_start + sum(calls) == 7
    deliveries = Delivery.objects.filter(source=f"campaign:{campaign.public_id}")
    assert sorted(deliveries.values_list("idempotency_key", flat=True)) == sorted(
        f"campaign:{occurrence.public_id}:{c.pk}" for c in members
    )
    assert set(deliveries.values_list("status", "template", "category", "tenant")) == {
        ("queued", template.pk, "marketing", world.acme.pk)
    }
    assert deliveries.first().content == template.snapshot()  # type: ignore[union-attr]
    for recipient in Recipient.objects.filter(occurrence=occurrence):
        assert recipient.released
        assert recipient.delivery.contact_id == recipient.contact_id  # type: ignore[union-attr]
        assert recipient.delivery.not_before == recipient.due_at  # type: ignore[union-attr]


def test_everyone_due_at_the_start_is_in_the_outbox_once_the_campaign_starts(
    world: Any, campaign_factory: Any
) -> None:
    a, b = email_template(world.acme), email_template(world.acme)
    campaign = campaign_factory(contacts=50, variants=[(a, 50), (b, 50)], holdout_percent=10)
    occurrence = started(campaign)
    with time_machine.travel(T0, tick=False):
        dispatch.recipients_release(occurrence=occurrence)
    rows = Recipient.objects.filter(occurrence=occurrence)
    assert not rows.filter(holdout=False, released=False).exists()
    assert not rows.filter(holdout=True, released=True).exists()
    templates = dict(
        rows.filter(holdout=False).values_list("delivery__template", "variant__template")
    )
    assert all(k == v for k, v in templates.items())
    assert Delivery.objects.count() == rows.filter(holdout=False).count()


def test_the_occurrence_and_a_one_off_campaign_are_sent_once_everyone_is_released(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(contacts=3)
    occurrence = started(campaign)
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        dispatch.tick()
    # Everyone is in the outbox, but it is still sending (and can be paused) until the
    # messages have gone.
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.SENDING
    assert Delivery.objects.count() == 3
    outbox_sent()
    with time_machine.travel(T0 + timedelta(seconds=15), tick=False):
        dispatch.tick()
    occurrence.refresh_from_db()
    campaign.refresh_from_db()
    assert occurrence.state == Occurrence.State.SENT
    assert occurrence.finished_at == T0 + timedelta(seconds=15)
    assert campaign.state == Campaign.State.SENT


def test_an_empty_audience_finishes_at_once(campaign_factory: Any) -> None:
    campaign = campaign_factory(contacts=0)
    started(campaign)
    with time_machine.travel(T0, tick=False):
        dispatch.tick()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENT


def test_starting_twice_freezes_once(campaign_factory: Any) -> None:
    campaign = campaign_factory(contacts=3)
    occurrence = started(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SCHEDULED)
    assert dispatch.occurrence_start(campaign=campaign, key="once", at=T0) is None
    assert Occurrence.objects.get() == occurrence
    assert Recipient.objects.count() == 3


def test_the_throttle_spaces_recipients_and_releases_only_those_due(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(contacts=6, throttle_per_minute=120)  # one every half second
    occurrence = started(campaign)
    due = sorted(Recipient.objects.filter(occurrence=occurrence).values_list("due_at", flat=True))
    assert due == [T0 + timedelta(seconds=0.5 * i) for i in range(6)]
    with time_machine.travel(T0 + timedelta(seconds=1.2), tick=False):
        dispatch.recipients_release(occurrence=occurrence)
    assert Recipient.objects.filter(released=True).count() == 3
    assert list(Delivery.objects.order_by("not_before").values_list("not_before", flat=True)) == [
        T0,
        T0 + timedelta(seconds=0.5),
        T0 + timedelta(seconds=1),
    ]


def test_the_hold_out_is_drawn_by_contact_is_never_released_and_is_the_same_next_time(
    world: Any, campaign_factory: Any
) -> None:
    members = people(world.acme, 1000)
    campaign = campaign_factory(contacts=members, holdout_percent=10)
    occurrence = started(campaign)
    held = set(
        Recipient.objects.filter(occurrence=occurrence, holdout=True).values_list(
            "contact_id", flat=True
        )
    )
    assert 70 <= len(held) <= 130
    assert occurrence.holdout_count == len(held)
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        dispatch.tick()
        outbox_sent()
        dispatch.tick()
    sent_to = set(Delivery.objects.values_list("contact_id", flat=True))
    assert sent_to == {c.pk for c in members} - held
    assert Occurrence.objects.get(pk=occurrence.pk).state == Occurrence.State.SENT
    # The same draw in the campaign's next occurrence: one hold-out group over time.
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SCHEDULED)
    again = dispatch.occurrence_start(campaign=campaign, key="2", at=T0 + timedelta(days=7))
    assert again is not None
    assert held == set(
        Recipient.objects.filter(occurrence=again, holdout=True).values_list(
            "contact_id", flat=True
        )
    )


def test_variants_split_by_weight(world: Any, campaign_factory: Any) -> None:
    a, b = email_template(world.acme), email_template(world.acme)
    campaign = campaign_factory(contacts=1000, variants=[(a, 75), (b, 25)])
    occurrence = started(campaign)
    assert occurrence.state == Occurrence.State.SENDING  # a plain split: no winner to wait for
    split = Counter(
        Recipient.objects.filter(occurrence=occurrence).values_list("variant__key", flat=True)
    )
    assert 700 <= split["A"] <= 800 and split["A"] + split["B"] == 1000


def test_the_test_group_goes_first_and_the_rest_gets_the_variant_with_more_opens(
    world: Any, campaign_factory: Any
) -> None:
    a, b = email_template(world.acme), email_template(world.acme)
    campaign = campaign_factory(
        contacts=400,
        variants=[(a, 50), (b, 50)],
        test_percent=25,
        holdout_percent=10,
        winner_metric="opens",
        winner_after_hours=4,
    )
    occurrence = started(campaign)
    assert occurrence.state == Occurrence.State.TESTING
    assert occurrence.winner_due_at == T0 + timedelta(hours=4)
    rows = Recipient.objects.filter(occurrence=occurrence)
    waiting = rows.filter(holdout=False, variant__isnull=True)
    tested = rows.filter(variant__isnull=False)
    assert 50 <= tested.count() <= 130
    assert waiting.count() > 200
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        dispatch.tick()
    assert Delivery.objects.count() == tested.count()  # the rest waits
    first_round = set(Delivery.objects.values_list("pk", flat=True))
    # B's messages are opened, A's are not.
    for delivery in Delivery.objects.filter(template=b):
        Event.objects.create(
            tenant=world.acme,
            contact_id=delivery.contact_id,
            name=outcomes.EMAIL_OPENED,
            properties={"delivery_id": str(delivery.public_id)},
            occurred_at=T0 + timedelta(hours=1),
            message_id=str(uuid.uuid4()),
            source="messaging",
        )
    with time_machine.travel(T0 + timedelta(hours=3, minutes=59), tick=False):
        assert dispatch.tick()["winners"] == 0
    with time_machine.travel(T0 + timedelta(hours=4, seconds=1), tick=False):
        assert dispatch.tick()["winners"] == 1
        outbox_sent()
        dispatch.tick()
    occurrence.refresh_from_db()
    assert occurrence.winner is not None and occurrence.winner.key == "B"
    held = rows.filter(holdout=True)
    assert not held.filter(released=True).exists()
    assert Delivery.objects.count() == rows.count() - held.count()
    later = Delivery.objects.exclude(pk__in=first_round)
    assert set(later.values_list("template", flat=True)) == {b.pk}
    assert Occurrence.objects.get(pk=occurrence.pk).state == Occurrence.State.SENT


def test_a_pause_takes_back_what_is_still_queued_and_resume_sends_exactly_the_rest(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(contacts=10, throttle_per_minute=60)  # one a second
    occurrence = started(campaign)
    with time_machine.travel(T0 + timedelta(seconds=3.5), tick=False):
        dispatch.recipients_release(occurrence=occurrence)
        assert Recipient.objects.filter(released=True).count() == 4  # due at 0, 1, 2, 3 s
        # A sender has taken the first one (it may be on the wire): that one goes.
        taken = Delivery.objects.order_by("not_before").first()
        assert taken is not None
        Delivery.objects.filter(pk=taken.pk).update(status="sending", claim_token=uuid.uuid4())
        services.campaign_pause(campaign=campaign)
    assert list(Delivery.objects.values_list("pk", flat=True)) == [taken.pk]
    assert list(Recipient.objects.filter(released=True).values_list("delivery", flat=True)) == [
        taken.pk
    ]
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        dispatch.tick()
        assert Delivery.objects.count() == 1
        services.campaign_resume(campaign=campaign)
        # The pace holds: the rest are due from where the pause left them, 10 minutes on.
        left = sorted(Recipient.objects.filter(released=False).values_list("due_at", flat=True))
        assert len(left) == 9
        assert left[0] == T0 + timedelta(seconds=1) + timedelta(minutes=10, seconds=-3.5)
    Delivery.objects.filter(pk=taken.pk).update(status="sent", claim_token=None)
    with time_machine.travel(T0 + timedelta(minutes=11), tick=False):
        dispatch.tick()
        outbox_sent()
        dispatch.tick()
    keys = Counter(Delivery.objects.values_list("contact_id", flat=True))
    assert len(keys) == 10 and set(keys.values()) == {1}
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.SENT


def test_a_cancelled_campaign_releases_no_one_else_and_skips_what_is_queued(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(contacts=10, throttle_per_minute=60)
    occurrence = started(campaign)
    with time_machine.travel(T0 + timedelta(seconds=2.5), tick=False):
        dispatch.recipients_release(occurrence=occurrence)
        services.campaign_cancel(campaign=campaign)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        dispatch.tick()
    assert Recipient.objects.filter(released=True).count() == 3
    assert set(Delivery.objects.values_list("status", "reason")) == {
        ("skipped", "campaign cancelled")
    }
    assert Occurrence.objects.get().state == Occurrence.State.CANCELLED


def test_deliveries_insert_returns_the_outbox_rows_new_and_already_decided(
    world: Any,
) -> None:
    a, b = people(world.acme, 2)
    template = email_template(world.acme)
    first = deliveries_insert(
        tenant=world.acme, template=template, source="campaign:x", rows=[(a.pk, "k:a", T0)]
    )
    both = deliveries_insert(
        tenant=world.acme,
        template=template,
        source="campaign:x",
        rows=[(a.pk, "k:a", T0), (b.pk, "k:b", T0)],
    )
    assert both["k:a"] == first["k:a"] and set(both) == {"k:a", "k:b"}
    assert Delivery.objects.count() == 2
    assert (
        Delivery.objects.get(idempotency_key="k:b").public_id
        != Delivery.objects.get(idempotency_key="k:a").public_id
    )


@pytest.mark.django_db(transaction=True)
def test_two_workers_releasing_at_once_send_each_recipient_once(
    world: Any, campaign_factory: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: nothing to race")
    campaign = campaign_factory(contacts=3000)
    occurrence = started(campaign, at=datetime.now(UTC))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while dispatch.recipients_release(occurrence=occurrence, limit=200):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Delivery.objects.count() == 3000
    assert not Recipient.objects.filter(released=False).exists()
    assert Recipient.objects.filter(delivery__isnull=True).count() == 0


def test_send_time_optimisation_sends_each_at_their_best_hour_else_the_teams(
    world: Any, campaign_factory: Any
) -> None:
    evening, morning, new = people(world.acme, 3)

    def opened(contact: Any, hour: int, times: int) -> None:
        for day in range(times):
            Event.objects.create(
                tenant=world.acme,
                contact=contact,
                name=outcomes.EMAIL_OPENED,
                properties={},
                occurred_at=T0 - timedelta(days=day + 1) + timedelta(hours=hour - 10),
                message_id=str(uuid.uuid4()),
                source="messaging",
            )

    opened(evening, 18, 3)
    opened(morning, 7, 2)
    campaign = campaign_factory(
        contacts=[evening, morning, new], send_time_optimized=True, sto_window_hours=24
    )
    occurrence = started(campaign)  # at 10:00 UTC
    due = dict(Recipient.objects.filter(occurrence=occurrence).values_list("contact_id", "due_at"))
    assert due == {
        evening.pk: T0 + timedelta(hours=8),  # 18:00 today
        morning.pk: T0 + timedelta(hours=21),  # 07:00 tomorrow
        new.pk: T0 + timedelta(hours=8),  # no history: the team's best hour (18:00)
    }
    with time_machine.travel(T0 + timedelta(hours=8, seconds=1), tick=False):
        dispatch.tick()
    assert set(Delivery.objects.values_list("contact_id", flat=True)) == {evening.pk, new.pk}


def test_pausing_a_campaign_released_all_at_once_takes_back_everything_not_yet_taken(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(contacts=30)  # no throttle: everyone due at the start
    occurrence = started(campaign)
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        dispatch.recipients_release(occurrence=occurrence)
        assert Delivery.objects.count() == 30
        # A sender has taken ten (they may be on the wire) and sent five.
        taken = list(Delivery.objects.order_by("pk").values_list("pk", flat=True)[:10])
        Delivery.objects.filter(pk__in=taken[:5]).update(status="sent")
        Delivery.objects.filter(pk__in=taken[5:]).update(status="sending", claim_token=uuid.uuid4())
        services.campaign_pause(campaign=campaign)
    assert sorted(Delivery.objects.values_list("pk", flat=True)) == taken
    assert Recipient.objects.filter(occurrence=occurrence, released=False).count() == 20
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        dispatch.tick()
        assert Delivery.objects.count() == 10  # paused: nothing more
        services.campaign_resume(campaign=campaign)
        dispatch.tick()
    per_contact = Counter(Delivery.objects.values_list("contact_id", flat=True))
    assert len(per_contact) == 30 and set(per_contact.values()) == {1}
    assert not Recipient.objects.filter(released=True, delivery__isnull=True).exists()


def test_a_recipient_whose_contact_was_erased_during_the_freeze_is_dropped_not_stuck(
    world: Any, campaign_factory: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the foreign key is checked at commit; PostgreSQL can check it at once")
    from audience.models import Contact
    from segments.models import SegmentMembership

    members = people(world.acme, 4)
    campaign = campaign_factory(contacts=members, throttle_per_minute=60)  # one a second
    occurrence = started(campaign)
    late = Recipient.objects.filter(occurrence=occurrence, released=False).order_by("due_at").last()
    assert late is not None
    # Erased behind the recipient's back (as a concurrent erasure's cascade, which could not
    # see the freeze's uncommitted row, leaves it), with the foreign keys checked at once.
    SegmentMembership.objects.filter(contact_id=late.contact_id).delete()
    gone = Contact.objects.filter(pk=late.contact_id)
    gone._raw_delete(gone.db)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        dispatch.tick()
        outbox_sent()
        dispatch.tick()
    assert Delivery.objects.count() == 3
    assert not Recipient.objects.filter(pk=late.pk).exists()
    assert Occurrence.objects.get(pk=occurrence.pk).state == Occurrence.State.SENT


def test_campaigns_whose_start_keeps_failing_dont_starve_the_others_in_the_tick(
    world: Any, campaign_factory: Any, monkeypatch: Any
) -> None:
    broken = Campaign.objects.bulk_create(
        Campaign(
            tenant=world.acme,
            name=f"Broken {i}",
            state=Campaign.State.SCHEDULED,
            schedule=Campaign.Schedule.AT,
            send_at=T0 - timedelta(hours=1),
        )
        for i in range(100)
    )
    broken_ids = {c.pk for c in Campaign.objects.filter(name__startswith="Broken ")}
    assert len(broken_ids) == len(broken)
    real_start = dispatch.occurrence_start

    def start(*, campaign: Campaign, **kwargs: Any) -> Occurrence | None:
        if campaign.pk in broken_ids:
            raise RuntimeError("broken")
        return real_start(campaign=campaign, **kwargs)

    monkeypatch.setattr(dispatch, "occurrence_start", start)
    with time_machine.travel(T0 - timedelta(minutes=5), tick=False):
        good = services.campaign_schedule(
            campaign=campaign_factory(schedule="at", send_at=T0 - timedelta(minutes=1))
        )
    with time_machine.travel(T0, tick=False):
        assert dispatch.tick(at=T0)["started"] == 0  # the hundred broken ones came first
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        assert dispatch.tick(at=T0 + timedelta(seconds=5))["started"] == 1
    assert Occurrence.objects.filter(campaign=good).exists()
