"""What a message must pass before it leaves (messaging/policy.py), judged on claimed batches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from audience.models import Consent, Contact
from messaging import outbox, policy
from messaging.models import (
    Category,
    Channel,
    Delivery,
    PushSubscription,
    SendingPolicy,
    Suppression,
    Template,
)

pytestmark = pytest.mark.django_db


def _decide(world: Any, contacts: list[Contact], **kw: Any) -> list[policy.Verdict]:
    """Decide one delivery per contact, claim them like a sender, and judge them."""
    at = kw.pop("at", datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    channel = kw.pop("channel", Channel.EMAIL)
    template = Template.objects.get_or_create(
        tenant=world.acme,
        name=f"T {channel}",
        defaults={"channel": channel, "subject": "s", "html": "h", "title": "t", "body": "b"},
    )[0]
    for contact in contacts:
        Delivery.objects.create(
            tenant=world.acme,
            contact=contact,
            channel=channel,
            template=template,
            content=template.snapshot(),
            source=kw.get("source", "test"),
            category=kw.get("category", Category.MARKETING),
            idempotency_key=str(uuid.uuid4()),
            not_before=at - timedelta(minutes=1),
        )
    batch = outbox.claim(channel=channel, limit=1000, token=uuid.uuid4(), at=at)
    verdicts = policy.decide(batch, at=at)
    return [verdicts[d.pk] for d in batch]  # in the order decided (claims go oldest first)


def _contact(world: Any, email: str = "ann@example.com", **fields: Any) -> Contact:
    return Contact.objects.create(tenant=world.acme, email=email, **fields)


def test_it_sends_to_a_contact_who_did_not_opt_out(world: Any) -> None:
    assert _decide(world, [_contact(world)]) == [policy.SEND]


def test_it_skips_an_unsubscribed_contact_for_marketing_but_not_for_a_receipt(world: Any) -> None:
    ann = _contact(world, email_consent=Consent.REVOKED)
    assert _decide(world, [ann])[0] == policy.Verdict("skip", "unsubscribed")
    assert _decide(world, [ann], category=Category.TRANSACTIONAL) == [policy.SEND]


def test_it_requires_an_opt_in_when_the_tenant_asks_for_one(world: Any) -> None:
    SendingPolicy.objects.create(tenant=world.acme, require_opt_in=True)
    unknown = _contact(world, "u@example.com")
    granted = _contact(world, "g@example.com", email_consent=Consent.GRANTED)
    verdicts = _decide(world, [unknown, granted])
    assert verdicts == [policy.Verdict("skip", "no opt-in"), policy.SEND]


def test_it_never_sends_to_a_suppressed_address_even_a_receipt(world: Any) -> None:
    Suppression.objects.create(tenant=world.acme, address="ann@example.com", reason="bounced")
    # Another tenant's suppression of the same address is not this tenant's business.
    Suppression.objects.create(tenant=world.globex, address="bob@example.com", reason="bounced")
    ann, bob = _contact(world, "Ann@Example.com"), _contact(world, "bob@example.com")
    verdicts = _decide(world, [ann, bob], category=Category.TRANSACTIONAL)
    assert verdicts[0].action == "skip" and "suppressed" in verdicts[0].reason
    assert verdicts[1] == policy.SEND


def test_it_skips_contacts_without_an_address_or_subscription(world: Any) -> None:
    assert _decide(world, [_contact(world, "")])[0] == policy.Verdict("skip", "no email address")
    ann = _contact(world)
    assert _decide(world, [ann], channel=Channel.PUSH)[0].reason == "no active push subscription"
    PushSubscription.objects.create(
        tenant=world.acme, contact=ann, endpoint="https://push.example/1", p256dh="k", auth="a"
    )
    assert _decide(world, [ann], channel=Channel.PUSH) == [policy.SEND]


def test_it_caps_marketing_per_contact_across_journeys_and_campaigns(world: Any) -> None:
    SendingPolicy.objects.create(tenant=world.acme, frequency_cap=2, frequency_window_hours=24)
    ann, bob = _contact(world), _contact(world, "bob@example.com")
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    template = Template.objects.create(tenant=world.acme, name="x", subject="s", html="h")
    for source, hours_ago in (("journey:1", 3), ("campaign:7", 30)):  # one inside the window
        Delivery.objects.create(
            tenant=world.acme,
            contact=ann,
            channel=Channel.EMAIL,
            template=template,
            content={},
            source=source,
            idempotency_key=source,
            status=Delivery.Status.SENT,
            sent_at=at - timedelta(hours=hours_ago),
        )
    # Ann has 1 in the window: one more fits, the next does not; Bob has room for two.
    verdicts = _decide(world, [ann, bob, ann, bob], at=at)
    assert [v.action for v in verdicts] == ["send", "send", "skip", "send"]
    assert verdicts[2].reason == "frequency cap: 2 in 24 h"
    # Receipts are never capped.
    assert _decide(world, [ann], category=Category.TRANSACTIONAL, at=at) == [policy.SEND]


def test_it_defers_during_quiet_hours_in_the_contacts_own_time_zone(world: Any) -> None:
    SendingPolicy.objects.create(tenant=world.acme, quiet_start=time(21), quiet_end=time(8))
    berlin = _contact(world, "b@example.com", timezone="Europe/Berlin")
    tokyo = _contact(world, "t@example.com", timezone="Asia/Tokyo")
    at = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Berlin, 05:30 in Tokyo
    b, t = _decide(world, [berlin, tokyo], at=at)
    assert b.action == "defer" and b.until == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert t.action == "defer" and t.until == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)  # 08:00 JST
    # A receipt is not held back.
    assert _decide(world, [berlin], at=at, category=Category.TRANSACTIONAL) == [policy.SEND]


def test_quiet_hours_end_at_local_eight_across_a_dst_change(world: Any) -> None:
    rule = SendingPolicy(tenant=world.acme, quiet_start=time(21), quiet_end=time(8))
    zone = policy.zoneinfo.ZoneInfo("Europe/Berlin")
    # The night clocks go forward (29 March 2026, 02:00 → 03:00): 08:00 is 06:00 UTC, not 07:00.
    until = policy.quiet_until(rule, zone, datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    assert until is not None and until.astimezone(UTC) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    # The night they go back (25 October 2026): 08:00 CET is 07:00 UTC.
    until = policy.quiet_until(rule, zone, datetime(2026, 10, 24, 22, 0, tzinfo=UTC))
    assert until is not None and until.astimezone(UTC) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    assert policy.quiet_until(rule, zone, datetime(2026, 10, 25, 12, 0, tzinfo=UTC)) is None


def test_it_falls_back_to_the_tenants_time_zone(world: Any) -> None:
    world.acme.timezone = "America/New_York"
    world.acme.save(update_fields=["timezone"])
    SendingPolicy.objects.create(tenant=world.acme, quiet_start=time(21), quiet_end=time(8))
    ann = _contact(world)  # no time zone of their own
    verdict = _decide(world, [ann], at=datetime(2026, 6, 1, 1, 30, tzinfo=UTC))[0]
    assert verdict.action == "defer"  # 21:30 in New York
    assert verdict.until == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 08:00 EDT


def test_it_holds_what_exceeds_the_tenants_hourly_limit_until_the_next_hour(world: Any) -> None:
    SendingPolicy.objects.create(tenant=world.acme, hourly_limit=3)
    contacts = [_contact(world, f"c{i}@example.com") for i in range(5)]
    at = datetime(2026, 6, 1, 12, 10, tzinfo=UTC)
    verdicts = _decide(world, contacts, at=at)
    assert [v.action for v in verdicts].count("send") == 3
    held = [v for v in verdicts if v.action == "defer"]
    assert len(held) == 2 and all(v.until == datetime(2026, 6, 1, 13, 0, tzinfo=UTC) for v in held)
    # The hour is used up for the next batch too; the next hour has room again.
    assert _decide(world, [_contact(world, "x@example.com")], at=at)[0].action == "defer"
    later = at + timedelta(hours=1)
    assert _decide(world, [_contact(world, "y@example.com")], at=later) == [policy.SEND]
