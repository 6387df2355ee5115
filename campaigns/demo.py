"""The demo shop's campaigns (issue 14): one sent 36 hours ago with an A/B test, a winner and
a hold-out, whose results page has opens, clicks, unsubscribes, bounces, orders, revenue and an
hour-by-hour chart; a weekly digest on a recurring schedule; and a draft.

    demo_seed(*, tenant, actor=None, now=None) -> int     campaigns made; 0 when done before

`ops.demo.seed_demo` (`manage.py seed_demo`, every `make run`) calls it through
`campaigns.services.campaign_demo_seed` after the shop's contacts, segments and templates exist.
Idempotent: a tenant that has the sent demo campaign is left alone.

Everything goes through the real paths where there is one: the campaigns are made, scheduled and
started with the campaign services, the audience is frozen and released into the outbox by
`campaigns.dispatch` at moments in the past (the winner is decided four hours after the start,
from the test group's clicks), and the outcomes are recorded as events on the recipients the way
messaging records them (`Email Sent`, `Email Opened`, `Email Link Clicked`, `Email Bounced`,
named by the delivery, at their own moments), orders as `Order Completed` events with their
total, unsubscribes through `messaging.services.consent_set`. Only the sending is stood in for:
the released messages are marked sent as the sender would mark them (it would mail them to
`var/mail/` now rather than then).
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils.timezone import now as clock

from audience.models import Consent, Contact
from audience.services import Fact, events_record
from campaigns import dispatch, services
from campaigns.models import Campaign, Occurrence, Recipient
from messaging.models import Channel, Delivery, Template
from messaging.selectors import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    EMAIL_SENT,
    outcome_properties,
)
from messaging.services import consent_set, template_save
from segments.models import Segment
from segments.services import segment_create
from tenants.models import Tenant

SENT_NAME = "Spring sale"
DIGEST_NAME = "Weekly picks"
DRAFT_NAME = "Summer camping launch"
AUDIENCE_NAME = "Newsletter readers"
SEED = 14  # the draws of who opens, clicks and orders: the same demo every time
SHOP = "https://demo-shop.example"
LINKS = (f"{SHOP}/sale", f"{SHOP}/c/tents", f"{SHOP}/c/boots")
# Out of 1,000 recipients of each group: (opens, clicks, orders); B's subject line wins.
RATES = {"A": (380, 60, 40), "B": (460, 110, 45), "holdout": (0, 0, 20)}
BOUNCES, UNSUBSCRIBES = 12, 6  # per 1,000 sent
JOURNEY_SHOPPERS = 60  # see _journey_shoppers
OUTCOME_SOURCE = "messaging"  # the source of every message outcome (messaging/outcomes.py)


def _template(tenant: Tenant, name: str, subject: str, preheader: str, body: str) -> Template:
    found = Template.objects.filter(tenant=tenant, name=name).first()
    if found is not None:
        return found
    html = (
        "<html><head><style>h1 { color: #1f5f4a; } a.button { background: #1f5f4a;"
        " color: #fff; padding: 8px 16px; text-decoration: none; }</style></head><body>"
        "<h1>Hi {{ contact.first_name | default: 'there' }},</h1>"
        f"<p>{body}</p>"
        f'<p><a class="button" href="{LINKS[0]}">Shop the sale</a></p>'
        f'<p><a href="{LINKS[1]}">Tents</a> · <a href="{LINKS[2]}">Boots</a></p>'
        "<p>Happy trails,<br>{{ tenant.name }}</p>"
        '<p style="font-size: 12px"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
        "</body></html>"
    )
    return template_save(
        tenant=tenant,
        name=name,
        channel=Channel.EMAIL,
        subject=subject,
        preheader=preheader,
        html=html,
    )


def _audience(tenant: Tenant) -> Segment:
    """Everyone the shop may email: a segment of its own, so the campaigns say whom they reach."""
    found = Segment.objects.filter(tenant=tenant, name=AUDIENCE_NAME).first()
    if found is not None:
        return found
    return segment_create(
        tenant=tenant,
        name=AUDIENCE_NAME,
        description="Everyone the shop may email: an address, not unsubscribed or suppressed.",
        rules={
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [{"type": "reachable", "channel": "email", "reachable": True}],
        },
    )


def demo_seed(*, tenant: Tenant, actor: Any = None, now: datetime | None = None) -> int:
    if Campaign.objects.filter(tenant=tenant, name=SENT_NAME).exists():
        return 0
    now = now or clock()
    with transaction.atomic():
        audience = _audience(tenant)
        # The ready-made segment of the cart journey's people: the sale leaves them to it.
        cart = Segment.objects.filter(tenant=tenant, name="Cart abandoners").first()
        sale_a = _template(
            tenant,
            "Spring sale (A)",
            "Our spring sale is on",
            "A third off tents, sleeping bags and boots",
            "Tents, sleeping bags and boots are a third off until Sunday.",
        )
        sale_b = _template(
            tenant,
            "Spring sale (B)",
            "{{ contact.first_name | default: 'Hey' }}, a third off your next trip",
            "Until Sunday only",
            "Whatever your next trip is, the gear for it is a third off until Sunday.",
        )
        digest = _template(
            tenant,
            "Weekly picks",
            "This week's picks from {{ tenant.name }}",
            "New arrivals and trail stories",
            "Five new arrivals we love this week, and a trail worth the drive.",
        )
        launch = _template(
            tenant,
            "Summer camping launch",
            "The summer camping range is here",
            "Lighter tents, cooler sleeping bags",
            "Lighter tents and cooler sleeping bags for warm nights under the stars.",
        )
        _sent_campaign(tenant, actor, audience, cart, sale_a, sale_b, now)
        services.campaign_schedule(
            campaign=services.campaign_create(
                tenant=tenant,
                user=actor,
                name=DIGEST_NAME,
                channel=Channel.EMAIL,
                schedule=Campaign.Schedule.RECURRING,
                cron_minute="0",
                cron_hour="9",
                cron_day_of_week="1",  # Mondays at 09:00 in the team's time zone
                cron_day_of_month="*",
                cron_month_of_year="*",
                segments=[audience],
                variants=[(digest, 100)],
                goal_event="Order Completed",
                goal_revenue_property="total",
            )
        )
        services.campaign_create(
            tenant=tenant,
            user=actor,
            name=DRAFT_NAME,
            channel=Channel.EMAIL,
            schedule=Campaign.Schedule.LOCAL,
            local_date=(now + timedelta(days=30)).date(),
            local_time=time(10, 0),
            throttle_per_minute=500,
            segments=[audience],
            exclude_segments=[cart] if cart else [],
            variants=[(launch, 100)],
            goal_event="Order Completed",
            goal_revenue_property="total",
        )
    return 3


def _sent_campaign(
    tenant: Tenant,
    actor: Any,
    audience: Segment,
    cart: Segment | None,
    sale_a: Template,
    sale_b: Template,
    now: datetime,
) -> Occurrence:
    """Sent 36 hours ago: 30% tested A against B, the winner (by clicks) went to the rest four
    hours later, 10% held out."""
    started = (now - timedelta(hours=36)).replace(minute=0, second=0, microsecond=0)
    campaign = services.campaign_create(
        tenant=tenant,
        user=actor,
        name=SENT_NAME,
        channel=Channel.EMAIL,
        schedule=Campaign.Schedule.NOW,
        segments=[audience],
        exclude_segments=[cart] if cart else [],
        variants=[(sale_a, 50), (sale_b, 50)],
        test_percent=30,
        winner_metric=Campaign.WinnerMetric.CLICKS,
        winner_after_hours=4,
        holdout_percent=10,
        goal_event="Order Completed",
        goal_window_hours=72,
        goal_revenue_property="total",
    )
    # Scheduling "send now" queues its start for after the commit; the seed starts it itself,
    # in the past (that queued start then finds it sent and does nothing).
    services.campaign_schedule(campaign=campaign)
    occurrence = dispatch.occurrence_start(campaign=campaign, key=dispatch.ONCE, at=started)
    assert occurrence is not None, "the demo campaign did not start"
    rng = random.Random(SEED)
    busy = _journey_shoppers(tenant)

    # The test group goes out at the start.
    dispatch.recipients_release(occurrence=occurrence, limit=100_000, at=started)
    _deliver(tenant, campaign, occurrence, rng, after=started, busy=busy)
    # Four hours later the winner, from those clicks, goes to the rest.
    decided = started + timedelta(hours=campaign.winner_after_hours)
    dispatch.occurrence_winner_decide(occurrence=occurrence, at=decided)
    dispatch.recipients_release(occurrence=occurrence, limit=100_000, at=decided)
    _deliver(tenant, campaign, occurrence, rng, after=decided, busy=busy)
    dispatch.occurrence_finish_if_done(occurrence=occurrence, at=decided + timedelta(minutes=20))
    _holdout_orders(tenant, occurrence, rng, started, busy)
    # The campaign says when it went, not when the seed ran.
    Campaign.objects.filter(tenant=tenant, pk=campaign.pk).update(
        send_at=started, updated_at=decided
    )
    return occurrence


def _deliver(
    tenant: Tenant,
    campaign: Campaign,
    occurrence: Occurrence,
    rng: random.Random,
    after: datetime,
    busy: frozenset[int],
) -> None:
    """The released, still queued messages marked sent as the sender does (a few per second
    from `after`), then what their readers did, as events at their moments."""
    released = Recipient.objects.filter(
        tenant=tenant, occurrence=occurrence, released=True, delivery__status=Delivery.Status.QUEUED
    ).select_related("variant")
    keys = dict(released.values_list("delivery_id", "variant__key"))
    deliveries = list(
        Delivery.objects.filter(tenant=tenant, pk__in=keys)
        .select_related("tenant", "contact")
        .order_by("pk")
    )
    for n, delivery in enumerate(deliveries):
        sent_at = after + timedelta(seconds=2 + n // 5)
        delivery.status = Delivery.Status.SENT
        delivery.attempts = 1
        delivery.provider_id = f"<demo-{delivery.public_id}@demo-shop.example>"
        delivery.handed_over_at = delivery.sent_at = delivery.updated_at = sent_at
        delivery.created_at = after
    Delivery.objects.bulk_update(
        deliveries,
        ["status", "attempts", "provider_id", "handed_over_at", "sent_at", "updated_at",
         "created_at"],
    )  # fmt: skip

    by_key: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_key.setdefault(keys[delivery.pk], []).append(delivery)
    facts: list[Fact] = []
    unsubscribing: list[Contact] = []
    for key, group in by_key.items():
        opens, clicks, orders = RATES[key]
        facts += [_outcome(d, EMAIL_SENT, _sent(d)) for d in group]
        # Exact shares of each group (drawn with the seed), so that even a test group of a
        # hundred shows every kind of outcome.
        bounced = set(_pick(rng, group, BOUNCES))
        for d in bounced:
            bounce = {"bounce_type": "hard", "reason": "550 5.1.1 mailbox unavailable"}
            facts.append(_outcome(d, EMAIL_BOUNCED, _sent(d) + timedelta(minutes=1), bounce))
        readers = [d for d in group if d not in bounced]
        openers = _pick(rng, readers, opens, of=len(group))
        opened = {d.pk: _sent(d) + timedelta(minutes=rng.randrange(3, 28 * 60)) for d in openers}
        facts += [_outcome(d, EMAIL_OPENED, opened[d.pk], {"via": "pixel"}) for d in openers]
        leaving = set(_pick(rng, openers, UNSUBSCRIBES, of=len(group)))
        unsubscribing += [d.contact for d in leaving]
        staying = [d for d in openers if d not in leaving]
        clickers = _pick(rng, staying, clicks, of=len(group))
        for d in clickers:
            clicked = opened[d.pk] + timedelta(seconds=rng.randrange(5, 600))
            for i, url in enumerate(rng.sample(LINKS, rng.choice((1, 1, 1, 2, 3)))):
                at = clicked + timedelta(seconds=40 * i)
                link = {"url": url, "via": "redirect"}
                facts.append(_outcome(d, EMAIL_CLICKED, at, link, unique=False))
        buyers = _pick(rng, [d for d in clickers if d.contact_id not in busy], orders, len(group))
        facts += [_order(d.contact_id, opened[d.pk] + timedelta(minutes=15), rng) for d in buyers]
    events_record(tenant=tenant, facts=facts)
    for contact in unsubscribing:
        consent_set(
            tenant=tenant,
            contact=contact,
            channel=campaign.channel,
            consent=Consent.REVOKED,
            source="one-click unsubscribe",
        )


def _sent(delivery: Delivery) -> datetime:
    assert delivery.sent_at is not None
    return delivery.sent_at


def _pick(rng: random.Random, among: list[Any], per_mille: int, of: int = 0) -> list[Any]:
    """`per_mille` of `of` (default: of all of them), at least one, drawn from `among`."""
    wanted = max(1, round((of or len(among)) * per_mille / 1000))
    return rng.sample(among, min(wanted, len(among)))


def _holdout_orders(
    tenant: Tenant,
    occurrence: Occurrence,
    rng: random.Random,
    started: datetime,
    busy: frozenset[int],
) -> None:
    """Some of the hold-out order anyway (they were sent nothing): the baseline of the lift."""
    held = Recipient.objects.filter(tenant=tenant, occurrence=occurrence, holdout=True).order_by(
        "pk"
    )
    ids = list(held.values_list("contact_id", flat=True))
    buyers = _pick(rng, [i for i in ids if i not in busy], RATES["holdout"][2], of=len(ids))
    facts = [
        _order(contact_id, started + timedelta(minutes=rng.randrange(30, 32 * 60)), rng)
        for contact_id in buyers
    ]
    events_record(tenant=tenant, facts=facts)


def _journey_shoppers(tenant: Tenant) -> frozenset[int]:
    """The shoppers the journeys' demo walks through its steps (journeys/demo.py takes the
    first 40 with an address and a name): an order of theirs would end or convert their demo
    enrollment once the journeys engine hears of it, so the campaign's buyers are others."""
    return frozenset(
        Contact.objects.filter(tenant=tenant)
        .exclude(email="")
        .exclude(first_name="")
        .order_by("pk")
        .values_list("pk", flat=True)[:JOURNEY_SHOPPERS]
    )


def _outcome(
    delivery: Delivery,
    name: str,
    at: datetime,
    extra: dict[str, Any] | None = None,
    *,
    unique: bool = True,
) -> Fact:
    """A message outcome as messaging.outcomes.record makes it, at its own moment."""
    key = f"{delivery.public_id}:{name}" + ("" if unique else f":{at.timestamp()}")
    properties = {**outcome_properties(delivery), **(extra or {})}
    return Fact(delivery.contact_id, name, key, OUTCOME_SOURCE, properties, at)


def _order(contact_id: int, at: datetime, rng: random.Random) -> Fact:
    total = rng.choice((39.9, 59.0, 89.5, 129.0, 149.0, 219.0, 349.0))
    return Fact(
        contact_id,
        "Order Completed",
        f"demo-campaign-order-{contact_id}",
        "demo",
        {"order_id": f"demo-c{contact_id}", "total": total, "currency": "EUR"},
        at,
    )
