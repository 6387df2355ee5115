"""Campaign fixtures, shared by the campaign suites.

people(tenant, n, prefix="p", **fields) -> [Contact]     reachable by email (consent granted)
segment_of(tenant, contacts, name="") -> Segment          a segment whose members they are
email_template(tenant, name="", subject="") -> Template
campaign_factory(**fields) -> Campaign                    a draft through the services:
    tenant (acme), contacts (int or list; default 3 new people), segments, exclude_segments,
    variants ([(template, weight)]; default one email template), any Campaign field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

import pytest

from audience.models import Contact
from messaging.models import Channel, Template
from segments.models import Segment, SegmentMembership

_n = count(1)

RULES = {
    "type": "group",
    "match": "all",
    "negate": False,
    "children": [{"type": "reachable", "channel": "email", "reachable": True}],
}


def people(tenant: Any, n: int, prefix: str = "p", **fields: Any) -> list[Contact]:
    batch = next(_n)
    fields.setdefault("email_consent", "granted")
    return Contact.objects.bulk_create(
        Contact(
            tenant=tenant,
            email=f"{prefix}{batch}-{i}@example.com",
            first_name=f"{prefix.title()}{i}",
            **fields,
        )
        for i in range(n)
    )


def segment_of(tenant: Any, contacts: Sequence[Contact], name: str = "") -> Segment:
    """A segment with exactly these members (its rules are not re-run here)."""
    segment = Segment.objects.create(
        tenant=tenant, name=name or f"Segment {next(_n)}", rules=RULES, member_count=len(contacts)
    )
    SegmentMembership.objects.bulk_create(
        SegmentMembership(tenant=tenant, segment=segment, contact=c) for c in contacts
    )
    return segment


def email_template(
    tenant: Any, name: str = "", subject: str = "Hello {{ contact.first_name }}"
) -> Template:
    return Template.objects.create(
        tenant=tenant,
        name=name or f"Message {next(_n)}",
        channel=Channel.EMAIL,
        subject=subject,
        html="<p>Hi {{ contact.first_name }}</p>",
    )


def outbox_sent() -> int:
    """Mark every queued message sent, as the senders would (a campaign is sending until its
    messages have left the outbox)."""
    from django.utils import timezone

    from messaging.models import Delivery

    at = timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENT, sent_at=at, updated_at=at
    )


def campaign_make(world: Any, **fields: Any) -> Any:
    from campaigns import services

    tenant = fields.pop("tenant", world.acme)
    contacts = fields.pop("contacts", 3)
    if "segments" not in fields:
        members = people(tenant, contacts) if isinstance(contacts, int) else contacts
        fields["segments"] = [segment_of(tenant, members)]
    if "variants" not in fields:
        fields["variants"] = [(email_template(tenant), 100)]
    fields.setdefault("name", f"Campaign {next(_n)}")
    return services.campaign_create(tenant=tenant, **fields)


@pytest.fixture
def campaign_factory(world: Any) -> Callable[..., Any]:
    def make(**fields: Any) -> Any:
        return campaign_make(world, **fields)

    return make
