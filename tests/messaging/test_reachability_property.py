"""Property test: the four readers of "reachable" agree, on seeded random worlds.

For every contact of two tenants, every channel and both categories, these say the same:
- the SQL filter a segment compiles: `Contact.objects.filter(reachable_q(...))` (and its
  negation selects exactly the others);
- the one-contact answer: `contact_reachable(...)`;
- the sender's policy on a claimed batch: send, or skip for a reachability reason;
- for marketing, the preference centre's page: the box checked and no note against it.

A world has contacts with an address or none (in mixed case too) and each consent granted,
unknown or revoked per channel; suppressions added in another case than the contacts'
addresses; push subscriptions active or not, a few filed under the other tenant; and each
tenant's opt-in setting on or off. Each world is rolled back before the next. A failure names
its seed and prints the world; another seed explores other worlds:
REACHABILITY_PROPERTY_SEED=7 pytest …
"""

from __future__ import annotations

import os
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client

from audience.models import Consent, Contact
from messaging import links, outbox, policy, reachability
from messaging.models import (
    Category,
    Channel,
    Delivery,
    PushSubscription,
    SendingPolicy,
    Template,
)
from messaging.reachability import contact_reachable, reachable_q
from messaging.services import suppression_add

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("REACHABILITY_PROPERTY_SEED", 20261207))
WORLDS = 24
CONTACTS = (4, 9)  # per tenant, at random within
AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# ASCII only: SQLite's lower() folds no other letters (PostgreSQL's does, as Python's).
ADDRESSES = ["ann@example.com", "bob@shop.test", "cyd@mail.org", "dee@x.test", "eve@x.test"]
CONSENTS = [Consent.GRANTED, Consent.UNKNOWN, Consent.REVOKED]
CHANNELS = reachability.CHANNELS
CATEGORIES = (Category.MARKETING, Category.TRANSACTIONAL)


def recase(rng: random.Random, address: str) -> str:
    form = rng.choice(["same", "upper", "mixed"])
    if form == "same":
        return address
    if form == "upper":
        return address.upper()
    return "".join(ch.upper() if rng.random() < 0.5 else ch for ch in address)


@dataclass
class World:
    seed: int
    tenants: list[Any]
    contacts: dict[int, list[Contact]] = field(default_factory=dict)  # by tenant pk
    described: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"world seed {self.seed}:\n  " + "\n  ".join(self.described)


def build(rng: random.Random, seed: int, tenants: list[Any]) -> World:
    world = World(seed=seed, tenants=tenants)
    for tenant in tenants:
        opt_in = rng.random() < 0.4
        if opt_in or rng.random() < 0.5:  # else no row: the defaults
            SendingPolicy.objects.create(tenant=tenant, require_opt_in=opt_in)
        suppressed = [a for a in ADDRESSES if rng.random() < 0.4]
        for address in suppressed:
            suppression_add(tenant=tenant, address=recase(rng, address), reason="bounced")
        world.described.append(f"{tenant.slug}: opt-in {opt_in}, suppressed {suppressed}")
        world.contacts[tenant.pk] = []
        for n in range(rng.randint(*CONTACTS)):
            email = "" if rng.random() < 0.2 else recase(rng, rng.choice(ADDRESSES))
            contact = Contact.objects.create(
                tenant=tenant,
                first_name=f"{tenant.slug}-{n}",
                email=email,
                email_consent=rng.choice(CONSENTS),
                push_consent=rng.choice(CONSENTS),
            )
            world.contacts[tenant.pk].append(contact)
            subscriptions = [rng.random() < 0.5 for _ in range(rng.choice([0, 0, 1, 1, 2]))]
            for active in subscriptions:
                PushSubscription.objects.create(
                    tenant=tenant,
                    contact=contact,
                    endpoint=f"https://push.example/{uuid.uuid4()}",
                    p256dh="k",
                    auth="a",
                    active=active,
                )
            elsewhere = rng.random() < 0.15
            if elsewhere:  # a row filed under the other tenant must not count for this one
                other = next(t for t in tenants if t.pk != tenant.pk)
                PushSubscription.objects.create(
                    tenant=other,
                    contact=contact,
                    endpoint=f"https://push.example/{uuid.uuid4()}",
                    p256dh="k",
                    auth="a",
                )
            world.described.append(
                f"{contact.first_name} {email!r} email:{contact.email_consent} "
                f"push:{contact.push_consent} subscriptions:{subscriptions} "
                f"other tenant's:{elsewhere}"
            )
    return world


def by_sql(tenant: Any, channel: str, category: str) -> set[str]:
    contacts = Contact.objects.filter(tenant=tenant)
    q = reachable_q(tenant=tenant, channel=channel, category=category)
    chosen = set(contacts.filter(q).values_list("first_name", flat=True))
    others = set(contacts.filter(~q).values_list("first_name", flat=True))
    assert chosen.isdisjoint(others) and chosen | others == {c.first_name for c in contacts}
    return chosen


def by_contact(world: World, tenant: Any, channel: str, category: str) -> set[str]:
    return {
        c.first_name
        for c in world.contacts[tenant.pk]
        if contact_reachable(tenant=tenant, contact=c, channel=channel, category=category)
    }


def by_policy(
    world: World, reasons: Counter[str]
) -> tuple[dict[tuple[int, str, str], set[str]], dict[int, Delivery]]:
    """Decide a delivery per contact, channel and category, claim each channel's deliveries
    (both tenants in one batch, as a sender claims them) and judge them."""
    pages: dict[int, Delivery] = {}  # a marketing email per contact: its preference link
    for tenant in world.tenants:
        for channel in CHANNELS:
            template = Template.objects.create(
                tenant=tenant,
                name=f"T {channel}",
                channel=channel,
                subject="s",
                html="h",
                title="t",
                body="b",
            )
            for contact in world.contacts[tenant.pk]:
                for category in CATEGORIES:
                    delivery = Delivery.objects.create(
                        tenant=tenant,
                        contact=contact,
                        channel=channel,
                        template=template,
                        content=template.snapshot(),
                        source="property",
                        category=category,
                        idempotency_key=str(uuid.uuid4()),
                        not_before=AT - timedelta(minutes=1),
                    )
                    if channel == Channel.EMAIL and category == Category.MARKETING:
                        pages[contact.pk] = delivery
    reached: dict[tuple[int, str, str], set[str]] = {
        (t.pk, ch, cat): set() for t in world.tenants for ch in CHANNELS for cat in CATEGORIES
    }
    for channel in CHANNELS:
        batch = outbox.claim(channel=channel, limit=10_000, token=uuid.uuid4(), at=AT)
        verdicts = policy.decide(batch, at=AT)
        for d in batch:
            verdict = verdicts[d.pk]
            reasons[verdict.reason or verdict.action] += 1
            if verdict == policy.SEND:
                reached[(d.tenant_id, channel, d.category)].add(d.contact.first_name)
            else:  # no cap, no quiet hours, no limit: only reachability can hold a message
                assert verdict.action == "skip" and verdict.reason in reachability.REASONS, verdict
    return reached, pages


def _shown(page: str, channel: str) -> bool:
    """What the preference centre shows: the box checked and no note saying it cannot reach."""
    box = re.search(rf'<input[^>]*name="{channel}"[^>]*>', page)
    assert box is not None
    return "checked" in box.group(0) and f'id="{channel}-note"' not in page


def by_preference_centre(
    world: World, tenant: Any, pages: dict[int, Delivery], client: Client
) -> dict[str, set[str]]:
    shown: dict[str, set[str]] = {channel: set() for channel in CHANNELS}
    for contact in world.contacts[tenant.pk]:
        response = client.get(urlsplit(links.preferences_url(pages[contact.pk])).path)
        assert response.status_code == 200
        page = response.content.decode()
        for channel in CHANNELS:
            if _shown(page, channel):
                shown[channel].add(contact.first_name)
    return shown


def test_the_segment_filter_one_contact_the_sender_and_the_preference_centre_agree(
    world: Any, client: Client
) -> None:
    tenants = [world.acme, world.globex]
    reasons: Counter[str] = Counter()
    for n in range(WORLDS):
        seed = SEED * 1000 + n
        with transaction.atomic():  # each world in a savepoint, rolled back after
            w = build(random.Random(seed), seed, tenants)
            sent, pages = by_policy(w, reasons)
            for tenant in tenants:
                centre = by_preference_centre(w, tenant, pages, client)
                for channel in CHANNELS:
                    for category in CATEGORIES:
                        sql = by_sql(tenant, channel, category)
                        where = f"{tenant.slug} {channel} {category}\n{w.describe()}"
                        assert sql == by_contact(w, tenant, channel, category), where
                        assert sql == sent[(tenant.pk, channel, category)], where
                        if category == Category.MARKETING:
                            assert sql == centre[channel], where
            transaction.set_rollback(True)
    # The worlds met every rule, and reached contacts too: agreeing on nothing proves nothing.
    assert set(reasons) == reachability.REASONS | {"send"}, reasons
