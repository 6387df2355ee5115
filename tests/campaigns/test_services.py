"""The campaign services: what a marketer may create, change and schedule, and what each state
allows, in the words they read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import services
from campaigns.models import Campaign, CampaignSegment, Variant
from messaging.models import Channel, Delivery, Template
from tests.campaigns.conftest import email_template, people, segment_of

pytestmark = pytest.mark.django_db


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return exc.value.message_dict


def push_template(tenant: Any) -> Template:
    return Template.objects.create(
        tenant=tenant, name="A push", channel=Channel.PUSH, title="Hi", body="There"
    )


def test_it_creates_a_draft_with_its_audience_and_variants_keyed_in_order(world: Any) -> None:
    a, b = email_template(world.acme), email_template(world.acme)
    vip = segment_of(world.acme, people(world.acme, 2))
    churned = segment_of(world.acme, [])
    campaign = services.campaign_create(
        tenant=world.acme,
        user=world.dave,
        name="  Spring launch ",
        segments=[vip],
        exclude_segments=[churned],
        variants=[(a, 70), (b, 30)],
        test_percent=20,
    )
    assert campaign.state == Campaign.State.DRAFT
    assert campaign.name == "Spring launch"
    assert campaign.created_by == world.dave
    assert list(
        Variant.objects.filter(campaign=campaign).values_list("key", "template", "weight")
    ) == [
        ("A", a.pk, 70),
        ("B", b.pk, 30),
    ]
    links = CampaignSegment.objects.filter(campaign=campaign)
    assert sorted(links.values_list("segment_id", "exclude")) == sorted(
        [(vip.pk, False), (churned.pk, True)]
    )


def test_it_refuses_another_teams_segment_or_template_and_writes_nothing(world: Any) -> None:
    theirs = segment_of(world.globex, people(world.globex, 1))
    with pytest.raises(ValidationError) as exc:
        services.campaign_create(tenant=world.acme, name="Steal", segments=[theirs])
    assert errors_of(exc) == {"segments": ["Choose segments of your own team."]}
    with pytest.raises(ValidationError) as exc:
        services.campaign_create(
            tenant=world.acme, name="Steal", variants=[(email_template(world.globex), 100)]
        )
    assert errors_of(exc) == {"variants": ["Choose messages of your own team."]}
    assert not Campaign.objects.exists()


def test_it_names_each_field_a_marketer_got_wrong(world: Any, campaign_factory: Any) -> None:
    campaign_factory(name="Taken")
    segment = segment_of(world.acme, [])
    with pytest.raises(ValidationError) as exc:
        services.campaign_create(
            tenant=world.acme,
            name="taken",
            holdout_percent=80,
            segments=[segment],
            exclude_segments=[segment],
            variants=[(push_template(world.acme), 100)],
            schedule=Campaign.Schedule.LOCAL,
            send_time_optimized=True,
        )
    errors = errors_of(exc)
    assert errors["name"] == ["A campaign with this name already exists."]
    assert "holdout_percent" in errors
    assert errors["exclude_segments"] == ["A segment can't be both sent to and excluded."]
    assert errors["variants"] == ["“A push” is not an email message: choose one for this channel."]
    assert "can't be combined with sending at a local time" in errors["send_time_optimized"][0]


def test_it_allows_five_variants_at_most(world: Any) -> None:
    six = [(email_template(world.acme), 10) for _ in range(6)]
    with pytest.raises(ValidationError) as exc:
        services.campaign_create(tenant=world.acme, name="Six", variants=six)
    assert errors_of(exc) == {"variants": ["A campaign can test at most 5 variants."]}


def test_it_changes_a_draft_but_not_a_sending_campaign(campaign_factory: Any, world: Any) -> None:
    campaign = campaign_factory()
    campaign = services.campaign_update(campaign=campaign, name="Renamed", throttle_per_minute=100)
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENDING)
    with pytest.raises(ValidationError) as exc:
        services.campaign_update(campaign=campaign, name="Again")
    assert exc.value.code == "state"
    assert "only a draft or a scheduled campaign can be changed" in exc.value.messages[0]


def test_a_channel_change_must_come_with_messages_of_that_channel(campaign_factory: Any) -> None:
    campaign = campaign_factory()
    with pytest.raises(ValidationError) as exc:
        services.campaign_update(campaign=campaign, channel=Channel.PUSH)
    assert list(errors_of(exc)) == ["channel"]
    services.campaign_update(
        campaign=campaign, channel=Channel.PUSH, variants=[(push_template(campaign.tenant), 100)]
    )
    assert Campaign.objects.get(pk=campaign.pk).channel == Channel.PUSH


def test_it_says_what_is_missing_before_it_schedules(world: Any) -> None:
    campaign = services.campaign_create(tenant=world.acme, name="Bare", schedule="at")
    with pytest.raises(ValidationError) as exc:
        services.campaign_schedule(campaign=campaign)
    assert errors_of(exc) == {
        "segments": ["Choose at least one segment to send to."],
        "variants": ["Choose the message to send."],
        "send_at": ["Pick the date and time to send."],
    }
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT


def test_it_refuses_a_time_that_has_passed_and_a_test_without_two_variants(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(
        schedule="at", send_at=timezone.now() - timedelta(minutes=1), test_percent=20
    )
    with pytest.raises(ValidationError) as exc:
        services.campaign_schedule(campaign=campaign)
    assert errors_of(exc) == {
        "send_at": ["This time has passed: pick one in the future."],
        "test_percent": [
            "An A/B test needs two variants or more: add one, or send to 100% of the audience."
        ],
    }


def test_send_at_a_time_waits_for_it(campaign_factory: Any) -> None:
    later = timezone.now() + timedelta(hours=2)
    campaign = services.campaign_schedule(campaign=campaign_factory(schedule="at", send_at=later))
    assert (campaign.state, campaign.send_at) == (Campaign.State.SCHEDULED, later)
    assert campaign.periodic_task is None


def test_send_now_is_due_at_once(campaign_factory: Any) -> None:
    with time_machine.travel(datetime(2026, 12, 7, 10, tzinfo=UTC), tick=False):
        campaign = services.campaign_schedule(campaign=campaign_factory())
    assert campaign.send_at == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_a_recurring_campaign_gets_a_beat_entry_in_the_teams_zone_that_follows_its_changes(
    world: Any, campaign_factory: Any
) -> None:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save()
    campaign = campaign_factory(
        name="Weekly digest", schedule="recurring", cron_hour="9", cron_day_of_week="mon"
    )
    with time_machine.travel(datetime(2026, 12, 7, 12, tzinfo=UTC), tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
    task = PeriodicTask.objects.get(pk=campaign.periodic_task_id)
    assert task.name == f"campaign {campaign.public_id}: Weekly digest"
    assert task.task == "campaigns.tasks.recurring_fire"
    assert json.loads(task.kwargs) == {"campaign_id": str(campaign.public_id)}
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "mon")
    assert str(task.crontab.timezone) == "Europe/Berlin"
    assert task.enabled
    # The next Monday, 9:00 in Berlin (winter time).
    assert campaign.send_at == datetime(2026, 12, 14, 8, tzinfo=UTC)

    campaign = services.campaign_update(campaign=campaign, cron_hour="7", name="Digest")
    task.refresh_from_db()
    assert (task.crontab.hour, task.name) == ("7", f"campaign {campaign.public_id}: Digest")
    assert PeriodicTask.objects.filter(task="campaigns.tasks.recurring_fire").count() == 1

    campaign = services.campaign_unschedule(campaign=campaign)
    assert campaign.state == Campaign.State.DRAFT
    assert not PeriodicTask.objects.filter(task="campaigns.tasks.recurring_fire").exists()


def test_a_bad_crontab_is_refused_by_field(campaign_factory: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        campaign_factory(schedule="recurring", cron_hour="25")
    assert list(errors_of(exc)) == ["cron_hour"]


def test_pause_and_resume_only_where_they_make_sense(campaign_factory: Any) -> None:
    campaign = campaign_factory()
    for service in (services.campaign_pause, services.campaign_resume):
        with pytest.raises(ValidationError) as exc:
            service(campaign=campaign)
        assert exc.value.code == "state"
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENDING)
    campaign = services.campaign_pause(campaign=campaign)
    assert campaign.state == Campaign.State.PAUSED and campaign.paused_at is not None
    campaign = services.campaign_resume(campaign=campaign)
    assert campaign.state == Campaign.State.SENDING and campaign.paused_at is None


def test_cancel_skips_the_queued_messages_and_stops_a_recurring_schedule(
    world: Any, campaign_factory: Any
) -> None:
    campaign = services.campaign_schedule(
        campaign=campaign_factory(schedule="recurring", cron_hour="9")
    )
    source = f"campaign:{campaign.public_id}"
    contact = people(world.acme, 1)[0]
    template = email_template(world.acme)
    queued = Delivery.objects.create(
        tenant=world.acme,
        contact=contact,
        channel="email",
        template=template,
        content={},
        source=source,
        idempotency_key="q",
    )
    sent = Delivery.objects.create(
        tenant=world.acme,
        contact=contact,
        channel="email",
        template=template,
        content={},
        source=source,
        idempotency_key="s",
        status="sent",
    )
    other = Delivery.objects.create(
        tenant=world.acme,
        contact=contact,
        channel="email",
        template=template,
        content={},
        source="journey:x",
        idempotency_key="j",
    )
    campaign = services.campaign_cancel(campaign=campaign)
    assert campaign.state == Campaign.State.CANCELLED
    assert not PeriodicTask.objects.filter(task="campaigns.tasks.recurring_fire").exists()
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {queued.pk: "skipped", sent.pk: "sent", other.pk: "queued"}
    assert Delivery.objects.get(pk=queued.pk).reason == "campaign cancelled"
    with pytest.raises(ValidationError):
        services.campaign_cancel(campaign=campaign)


def test_a_draft_is_deleted_not_cancelled_and_a_sending_one_is_cancelled_first(
    campaign_factory: Any,
) -> None:
    draft = campaign_factory()
    with pytest.raises(ValidationError) as exc:
        services.campaign_cancel(campaign=draft)
    assert exc.value.messages == [
        "Only a scheduled, sending or paused campaign can be cancelled: delete a draft instead."
    ]
    sending = campaign_factory()
    Campaign.objects.filter(pk=sending.pk).update(state=Campaign.State.SENDING)
    with pytest.raises(ValidationError) as exc:
        services.campaign_delete(campaign=sending)
    assert exc.value.messages == ["This campaign is sending: cancel it before deleting it."]
    services.campaign_delete(campaign=draft)
    assert list(Campaign.objects.values_list("pk", flat=True)) == [sending.pk]


def test_duplicate_makes_a_draft_copy_with_the_same_audience_and_messages(
    world: Any, campaign_factory: Any
) -> None:
    a, b = email_template(world.acme), email_template(world.acme)
    original = campaign_factory(name="Sale", variants=[(a, 60), (b, 40)], holdout_percent=10)
    Campaign.objects.filter(pk=original.pk).update(state=Campaign.State.SENT)
    copy = services.campaign_duplicate(campaign=original, user=world.alice)
    again = services.campaign_duplicate(campaign=original)
    assert (copy.name, again.name) == ("Sale (copy)", "Sale (copy 2)")
    assert copy.state == Campaign.State.DRAFT and copy.holdout_percent == 10
    assert copy.created_by == world.alice
    assert list(copy.variants.values_list("key", "template", "weight")) == [
        ("A", a.pk, 60),
        ("B", b.pk, 40),
    ]
    assert list(copy.segments.values_list("segment", flat=True)) == list(
        original.segments.values_list("segment", flat=True)
    )


def test_deleting_a_sent_campaign_removes_its_occurrences_and_recipients_not_its_messages(
    campaign_factory: Any,
) -> None:
    from campaigns import dispatch
    from campaigns.models import Occurrence, Recipient

    campaign = campaign_factory(contacts=5)
    campaign = services.campaign_schedule(campaign=campaign)
    occurrence = dispatch.campaign_start_due(campaign=campaign)
    assert occurrence is not None
    dispatch.recipients_release(occurrence=occurrence)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENT)
    with CaptureQueriesContext(connection) as queries:
        services.campaign_delete(campaign=campaign)
    # Recipients go by their occurrence (indexed), never looked up by variant (no index: a scan
    # of every team's recipients).
    assert not [q for q in queries if '"variant_id" IN' in q["sql"] and "recipient" in q["sql"]]
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Occurrence.objects.exists() and not Recipient.objects.exists()
    assert not Variant.objects.filter(campaign_id=campaign.pk).exists()
    assert Delivery.objects.filter(source=f"campaign:{campaign.public_id}").count() == 5


def test_fewer_variants_drop_the_last_ones_unless_they_were_sent(
    world: Any, campaign_factory: Any
) -> None:
    a, b, c = (email_template(world.acme) for _ in range(3))
    campaign = campaign_factory(variants=[(a, 40), (b, 30), (c, 30)])
    campaign = services.campaign_update(campaign=campaign, variants=[(b, 100)])
    assert list(campaign.variants.values_list("key", "template", "weight")) == [("A", b.pk, 100)]


def test_resume_moves_an_ab_tests_winner_by_the_pause_even_without_a_throttle(
    world: Any, campaign_factory: Any
) -> None:
    """Else a test paused for most of its time would pick its winner on almost no data."""
    from campaigns import dispatch
    from campaigns.models import Occurrence, Recipient

    t0 = datetime(2026, 12, 7, 10, tzinfo=UTC)
    campaign = campaign_factory(
        contacts=40,
        variants=[(email_template(world.acme), 50), (email_template(world.acme), 50)],
        test_percent=20,
        winner_after_hours=4,
    )
    with time_machine.travel(t0, tick=False):
        campaign = services.campaign_schedule(campaign=campaign)
        occurrence = dispatch.campaign_start_due(campaign=campaign, at=t0)
    assert occurrence is not None and occurrence.winner_due_at == t0 + timedelta(hours=4)
    waiting = Recipient.objects.filter(occurrence=occurrence, variant__isnull=True, holdout=False)
    assert waiting.exists()
    tested = set(
        Recipient.objects.filter(occurrence=occurrence, variant__isnull=False).values_list(
            "due_at", flat=True
        )
    )
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        services.campaign_pause(campaign=campaign)
    with time_machine.travel(t0 + timedelta(hours=3), tick=False):
        services.campaign_resume(campaign=campaign)
    occurrence = Occurrence.objects.get(pk=occurrence.pk)
    assert occurrence.winner_due_at == t0 + timedelta(hours=6)
    assert set(waiting.values_list("due_at", flat=True)) == {t0 + timedelta(hours=6)}
    # No throttle: the test group's due times don't move.
    assert (
        set(
            Recipient.objects.filter(occurrence=occurrence, variant__isnull=False).values_list(
                "due_at", flat=True
            )
        )
        == tested
    )


def test_a_winner_step_is_refused_with_local_time_sending(
    world: Any, campaign_factory: Any
) -> None:
    from datetime import date, time

    variants = [(email_template(world.acme), 50), (email_template(world.acme), 50)]
    campaign = campaign_factory(
        schedule="local",
        local_date=date(2027, 1, 5),
        local_time=time(9),
        variants=variants,
        test_percent=20,
    )
    with time_machine.travel(datetime(2026, 12, 7, 10, tzinfo=UTC), tick=False):
        with pytest.raises(ValidationError) as exc:
            services.campaign_schedule(campaign=campaign)
        assert "local time" in errors_of(exc)["test_percent"][0]
        # A plain split (no winner step) at local time is fine.
        campaign = services.campaign_update(campaign=campaign, test_percent=100)
        assert services.campaign_schedule(campaign=campaign).state == Campaign.State.SCHEDULED


def test_duplicating_a_campaign_with_a_name_of_the_longest_length_three_times(
    campaign_factory: Any,
) -> None:
    campaign = campaign_factory(name="N" * 120)
    names = [services.campaign_duplicate(campaign=campaign).name for _ in range(3)]
    assert names == ["N" * 113 + " (copy)", "N" * 111 + " (copy 2)", "N" * 111 + " (copy 3)"]
    assert all(len(n) <= 120 for n in names)


@pytest.mark.parametrize(
    ("zone", "fields", "field"),
    [
        ("America/New_York", {"local_date": "9999-12-31"}, "local_date"),
        ("Asia/Tokyo", {"local_date": "0001-01-01"}, "local_date"),
        ("Europe/Berlin", {"recurring_until": "9999-12-31T00:00:00+00:00"}, "recurring_until"),
        ("Europe/Berlin", {"send_at": "1900-01-01T00:00:00+00:00"}, "send_at"),
    ],
)
def test_dates_far_outside_a_sane_range_are_refused_before_any_arithmetic(
    world: Any, campaign_factory: Any, zone: str, fields: dict[str, str], field: str
) -> None:
    from datetime import date, time

    world.acme.timezone = zone
    world.acme.save()
    kind = {"local_date": "local", "recurring_until": "recurring", "send_at": "at"}[field]
    values: dict[str, Any] = {
        name: (date.fromisoformat(v) if name == "local_date" else datetime.fromisoformat(v))
        for name, v in fields.items()
    }
    campaign = campaign_factory(schedule=kind, local_time=time(9), cron_hour="9")
    # A draft's update refuses it…
    with pytest.raises(ValidationError) as exc:
        services.campaign_update(campaign=campaign, **values)
    assert "between the years 2000 and 2200" in errors_of(exc)[field][0]
    # …and one stored anyhow can't be scheduled (a field error, not an overflow).
    Campaign.objects.filter(pk=campaign.pk).update(**values)
    with pytest.raises(ValidationError) as exc:
        services.campaign_schedule(campaign=campaign)
    assert field in errors_of(exc)
