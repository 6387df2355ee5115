"""Campaign results from seeded outcomes: per variant and against the hold-out.

The helpers at the top write campaigns, occurrences, recipients, their outbox rows and the
outcome events directly (as messaging records them: `properties.delivery_id`), so each test
states exactly what happened and when.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
import time_machine

from audience.models import Contact, Event
from campaigns import selectors
from campaigns.models import Campaign, Occurrence, Recipient, Variant
from messaging import outcomes
from messaging.models import Category, Channel, Delivery, Template

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # every occurrence here starts then
ORDER = "Order Completed"
_n = count(1)


def campaign_make(
    tenant: Any,
    *,
    keys: str = "AB",
    channel: str = Channel.EMAIL,
    holdout_percent: int = 0,
    goal_event: str = ORDER,
    goal_window_hours: int = 72,
    **fields: Any,
) -> Campaign:
    n = next(_n)
    campaign = Campaign.objects.create(
        tenant=tenant,
        name=f"Launch {n}",
        channel=channel,
        state=Campaign.State.SENDING,
        holdout_percent=holdout_percent,
        goal_event=goal_event,
        goal_window_hours=goal_window_hours,
        **fields,
    )
    for key in keys:
        template = Template.objects.create(
            tenant=tenant,
            name=f"Launch {n} {key}",
            channel=channel,
            subject=f"Subject {key}",
            html="<p>Hi</p>",
            title=f"Title {key}",
            body="Hi",
        )
        Variant.objects.create(tenant=tenant, campaign=campaign, key=key, template=template)
    return campaign


def occurrence_make(campaign: Campaign, *, at: datetime = T0, key: str = "once") -> Occurrence:
    return Occurrence.objects.create(
        tenant=campaign.tenant, campaign=campaign, key=key, started_at=at
    )


def contact_make(tenant: Any, email: str | None = None, **fields: Any) -> Contact:
    """A contact with an address of its own (`email=""`: none)."""
    if email is None:
        email = f"c{next(_n)}@example.com"
    return Contact.objects.create(tenant=tenant, email=email, **fields)


def recipient_make(
    occurrence: Occurrence,
    variant: str | None = "A",
    *,
    contact: Contact | None = None,
    holdout: bool = False,
    status: str = Delivery.Status.SENT,
    sent_at: datetime | None = None,
    reason: str = "",
    released: bool = True,
) -> Recipient:
    """A frozen recipient; unless it is in the hold-out (or not released), its outbox row too,
    sent at `sent_at` (default: a minute after the occurrence started)."""
    tenant = occurrence.tenant
    contact = contact or contact_make(tenant)
    chosen = None
    if variant and not holdout:
        chosen = Variant.objects.get(campaign=occurrence.campaign, key=variant)
    delivery = None
    if released and not holdout:
        template = chosen.template if chosen else Template.objects.filter(tenant=tenant).first()
        assert template is not None
        sent = status == Delivery.Status.SENT
        delivery = Delivery.objects.create(
            tenant=tenant,
            contact=contact,
            channel=occurrence.campaign.channel,
            category=Category.MARKETING,
            template=template,
            content=template.snapshot(),
            source=f"campaign:{occurrence.campaign.public_id}",
            idempotency_key=f"campaign:{occurrence.public_id}:{contact.pk}",
            status=status,
            reason=reason,
            sent_at=(sent_at or occurrence.started_at + timedelta(minutes=1)) if sent else None,
            claim_token=uuid.uuid4() if status == Delivery.Status.SENDING else None,
        )
    return Recipient.objects.create(
        tenant=tenant,
        occurrence=occurrence,
        contact=contact,
        variant=chosen,
        holdout=holdout,
        due_at=occurrence.started_at,
        released=released and not holdout,
        delivery=delivery,
    )


def event_make(
    tenant: Any, contact: Contact | int, name: str, at: datetime, **properties: Any
) -> Event:
    contact_id = contact if isinstance(contact, int) else contact.pk
    return Event.objects.create(
        tenant=tenant,
        contact_id=contact_id,
        name=name,
        properties=properties,
        occurred_at=at,
        message_id=str(uuid.uuid4()),
        source="messaging",
    )


def outcome_make(
    recipient: Recipient, name: str, at: datetime | None = None, **props: Any
) -> Event:
    """An outcome event about the recipient's own message, as messaging/outcomes.py records it."""
    delivery = recipient.delivery
    assert delivery is not None
    return event_make(
        recipient.tenant,
        recipient.contact_id,
        name,
        at or (delivery.sent_at or T0) + timedelta(minutes=30),
        delivery_id=str(delivery.public_id),
        source=delivery.source,
        **props,
    )


def opened(r: Recipient, at: datetime | None = None) -> Event:
    return outcome_make(r, outcomes.EMAIL_OPENED, at, via="pixel")


def clicked(r: Recipient, url: str, at: datetime | None = None) -> Event:
    return outcome_make(r, outcomes.EMAIL_CLICKED, at, url=url, via="redirect")


def ordered(r: Recipient, at: datetime, **props: Any) -> Event:
    return event_make(r.tenant, r.contact_id, ORDER, at, **props)


def results_at(campaign: Campaign, at: datetime = T0 + timedelta(hours=10)) -> Any:
    with time_machine.travel(at, tick=False):
        return selectors.campaign_results(campaign=campaign)


def by_key(results: Any) -> dict[str, Any]:
    return {row.key: row for row in results.rows}


# --- Tests ------------------------------------------------------------------------------------


def test_it_has_no_results_before_the_first_send(world: Any) -> None:
    campaign = campaign_make(world.acme)

    assert selectors.campaign_results(campaign=campaign) is None


def test_it_counts_recipients_sent_opens_clicks_and_bounces_per_variant(world: Any) -> None:
    campaign = campaign_make(world.acme, holdout_percent=10)
    occ = occurrence_make(campaign)
    a = [recipient_make(occ, "A") for _ in range(4)]
    b = [recipient_make(occ, "B") for _ in range(3)]
    recipient_make(occ, "B", status=Delivery.Status.SKIPPED, reason="unsubscribed")
    held = [recipient_make(occ, None, holdout=True) for _ in range(2)]
    opened(a[0])
    opened(a[0], T0 + timedelta(hours=2))  # a second open of the same message: still one
    opened(a[1])
    opened(a[2])
    clicked(a[0], "https://shop.example/new")
    opened(b[0])
    outcome_make(b[1], outcomes.EMAIL_BOUNCED, reason="550")
    outcome_make(b[2], outcomes.EMAIL_DELIVERED)

    rows = by_key(results_at(campaign))

    assert (rows["A"].recipients, rows["A"].sent, rows["A"].opens, rows["A"].clicks) == (4, 4, 3, 1)
    assert rows["A"].open_rate == pytest.approx(0.75)
    assert (rows["B"].recipients, rows["B"].sent, rows["B"].bounces) == (4, 3, 1)
    assert (rows["B"].delivered, rows["B"].opens, rows["B"].clicks) == (2, 1, 0)
    assert rows["holdout"].recipients == len(held)
    assert (rows["holdout"].sent, rows["holdout"].opens) == (0, 0)
    assert rows["A"].template == f"Launch {campaign.name.split()[-1]} A"


def test_it_counts_unique_and_total_clicks_per_link(world: Any) -> None:
    campaign = campaign_make(world.acme)
    occ = occurrence_make(campaign)
    ann, ben, cat = (recipient_make(occ, "A") for _ in range(3))
    dan = recipient_make(occ, "B")
    for _ in range(3):
        clicked(ann, "https://shop.example/sale")  # one reader, three clicks
    clicked(ben, "https://shop.example/sale")
    clicked(ben, "https://shop.example/shoes")
    clicked(dan, "https://shop.example/sale")

    results = results_at(campaign)
    rows = by_key(results)

    links = {link.url: (link.unique, link.total) for link in rows["A"].links}
    assert links == {"https://shop.example/sale": (2, 4), "https://shop.example/shoes": (1, 1)}
    assert rows["A"].links[0].url == "https://shop.example/sale"  # the most clicked first
    assert rows["A"].clicks == 2  # unique contacts, not clicks
    assert cat.pk  # never clicked
    total = {link.url: (link.unique, link.total) for link in results.total.links}
    assert total == {"https://shop.example/sale": (3, 5), "https://shop.example/shoes": (1, 1)}


def test_it_counts_conversions_and_revenue_in_the_goal_window_only(world: Any) -> None:
    campaign = campaign_make(world.acme, goal_window_hours=24)
    occ = occurrence_make(campaign)
    sent = T0 + timedelta(minutes=5)
    early, on_time, twice, late, words = (recipient_make(occ, "A", sent_at=sent) for _ in range(5))
    ordered(early, sent - timedelta(minutes=1), revenue=500)  # before their message: not its doing
    ordered(on_time, sent + timedelta(hours=3), revenue=40)
    ordered(twice, sent + timedelta(hours=1), revenue=10.5)
    ordered(twice, sent + timedelta(hours=23, minutes=59), revenue=2)
    ordered(late, sent + timedelta(hours=24, minutes=1), revenue=900)  # past the window
    ordered(words, sent + timedelta(hours=2), revenue="lots")  # converts; revenue not a number
    event_make(world.acme, on_time.contact, "Page Viewed", sent + timedelta(hours=1), revenue=7)

    row = by_key(results_at(campaign, T0 + timedelta(days=3)))["A"]

    assert row.conversions == 3  # on_time, twice (once), words
    assert row.revenue == Decimal("52.50")
    assert row.conversion_rate == pytest.approx(3 / 5)


def test_revenue_comes_from_the_campaigns_revenue_property(world: Any) -> None:
    campaign = campaign_make(world.acme, goal_revenue_property="total")
    occ = occurrence_make(campaign)
    r = recipient_make(occ, "A")
    ordered(r, T0 + timedelta(hours=1), total=19.99, revenue=1000)

    assert by_key(results_at(campaign))["A"].revenue == Decimal("19.99")


def test_without_a_revenue_property_conversions_earn_nothing(world: Any) -> None:
    campaign = campaign_make(world.acme, goal_revenue_property="")
    r = recipient_make(occurrence_make(campaign), "A")
    ordered(r, T0 + timedelta(hours=1), revenue=10)

    row = by_key(results_at(campaign))["A"]

    assert (row.conversions, row.revenue) == (1, Decimal("0.00"))


def test_without_a_goal_nothing_converts(world: Any) -> None:
    campaign = campaign_make(world.acme, goal_event="")
    r = recipient_make(occurrence_make(campaign), "A")
    ordered(r, T0 + timedelta(hours=1), revenue=10)

    results = results_at(campaign)

    assert (results.variants[0].conversions, results.total.revenue) == (0, Decimal("0.00"))
    assert all(p.conversions == 0 for p in results.series.points)


def test_it_measures_the_lift_over_the_holdout(world: Any) -> None:
    campaign = campaign_make(world.acme, keys="AB", holdout_percent=20)
    occ = occurrence_make(campaign)
    a = [recipient_make(occ, "A") for _ in range(10)]
    b = [recipient_make(occ, "B") for _ in range(10)]
    held = [recipient_make(occ, None, holdout=True) for _ in range(10)]
    for r in a[:3]:
        ordered(r, T0 + timedelta(hours=5), revenue=10)
    ordered(b[0], T0 + timedelta(hours=5), revenue=10)
    # The hold-out's window starts with the occurrence: they were sent nothing.
    ordered(held[0], T0 + timedelta(minutes=30), revenue=10)
    ordered(held[1], T0 + timedelta(hours=80), revenue=10)  # past the 72 h window
    ordered(held[2], T0 - timedelta(hours=1), revenue=10)  # before the occurrence

    results = results_at(campaign, T0 + timedelta(days=5))
    rows = by_key(results)

    assert rows["holdout"].conversions == 1
    assert rows["holdout"].conversion_rate == pytest.approx(0.1)
    assert rows["A"].lift == pytest.approx(2.0)  # 30 % vs 10 %: +200 %
    assert rows["A"].lift_points == pytest.approx(20.0)
    assert rows["B"].lift == pytest.approx(0.0)
    assert results.total.lift == pytest.approx(1.0)  # 20 % vs 10 %


def test_lift_is_none_without_a_holdout(world: Any) -> None:
    campaign = campaign_make(world.acme, holdout_percent=0)
    occ = occurrence_make(campaign)
    r = recipient_make(occ, "A")
    ordered(r, T0 + timedelta(hours=1))

    results = results_at(campaign)

    assert results.holdout is None
    assert [row.key for row in results.rows] == ["A", "B"]
    assert results.variants[0].conversions == 1
    assert results.variants[0].lift is None and results.variants[0].lift_points is None


def test_lift_is_none_when_the_holdout_converted_nobody(world: Any) -> None:
    campaign = campaign_make(world.acme, holdout_percent=10)
    occ = occurrence_make(campaign)
    ordered(recipient_make(occ, "A"), T0 + timedelta(hours=1))
    recipient_make(occ, None, holdout=True)

    row = by_key(results_at(campaign))["A"]

    assert row.lift is None
    assert row.lift_points == pytest.approx(100.0)


def test_unsubscribes_count_after_the_message_within_the_window(world: Any) -> None:
    campaign = campaign_make(world.acme, goal_window_hours=48)
    occ = occurrence_make(campaign)
    soon, before, push, late = (recipient_make(occ, "A") for _ in range(4))
    held = recipient_make(occ, None, holdout=True)
    unsub = outcomes.UNSUBSCRIBED
    event_make(world.acme, soon.contact, unsub, T0 + timedelta(hours=1), channel="email")
    event_make(world.acme, before.contact, unsub, T0 - timedelta(days=1), channel="email")
    event_make(world.acme, push.contact, unsub, T0 + timedelta(hours=1), channel="push")
    event_make(world.acme, late.contact, unsub, T0 + timedelta(days=3), channel="email")
    event_make(world.acme, held.contact, unsub, T0 + timedelta(hours=1), channel="email")

    rows = by_key(results_at(campaign, T0 + timedelta(days=4)))

    assert rows["A"].unsubscribes == 1
    assert rows["A"].unsubscribe_rate == pytest.approx(0.25)
    assert rows["holdout"].unsubscribes == 0  # they were sent nothing to leave over


def test_another_tenants_and_other_messages_events_never_count(world: Any) -> None:
    campaign = campaign_make(world.acme, holdout_percent=10)
    occ = occurrence_make(campaign)
    r = recipient_make(occ, "A")
    held = recipient_make(occ, None, holdout=True)
    assert r.delivery is not None
    stranger = contact_make(world.globex)
    forged = {"delivery_id": str(r.delivery.public_id), "url": "https://evil.example/"}
    for name in (outcomes.EMAIL_OPENED, outcomes.EMAIL_CLICKED, outcomes.EMAIL_BOUNCED, ORDER):
        event_make(world.globex, stranger, name, T0 + timedelta(hours=1), **forged)
    # The same contact's open of another message (a journey's) is not this campaign's.
    other = Delivery.objects.create(
        tenant=world.acme,
        contact=r.contact,
        channel=Channel.EMAIL,
        content={},
        source="journey:x",
        idempotency_key="journey:x:1",
        status=Delivery.Status.SENT,
        sent_at=T0,
    )
    event_make(
        world.acme,
        r.contact,
        outcomes.EMAIL_OPENED,
        T0 + timedelta(hours=1),
        delivery_id=str(other.public_id),
    )
    # An earlier occurrence of the same campaign had its own messages.
    earlier = occurrence_make(campaign, at=T0 - timedelta(days=7), key="2026-10-26T09:00")
    old = recipient_make(earlier, "A", contact=r.contact, sent_at=T0 - timedelta(days=7))
    opened(old, T0 + timedelta(hours=1))
    globex_campaign = campaign_make(world.globex, holdout_percent=10)
    globex_occ = occurrence_make(globex_campaign)
    globex_held = recipient_make(globex_occ, None, holdout=True, contact=stranger)
    ordered(globex_held, T0 + timedelta(hours=1))

    rows = by_key(results_at(campaign))

    assert (rows["A"].opens, rows["A"].clicks, rows["A"].bounces) == (0, 0, 0)
    assert rows["A"].links == [] and rows["A"].conversions == 0
    assert (rows["holdout"].recipients, rows["holdout"].conversions) == (1, 0)
    assert held.pk


def test_push_clicks_through_the_notifications_link_are_counted(world: Any, client: Any) -> None:
    from urllib.parse import urlsplit

    from messaging import links

    campaign = campaign_make(world.acme, keys="A", channel=Channel.PUSH)
    r = recipient_make(occurrence_make(campaign), "A")
    assert r.delivery is not None
    with time_machine.travel(T0 + timedelta(minutes=20)):
        parts = urlsplit(links.push_click_url(r.delivery, "https://shop.example/app"))
        assert client.get(f"{parts.path}?{parts.query}").status_code == 302

    row = by_key(results_at(campaign))["A"]

    assert (row.opens, row.clicks, row.click_rate) == (1, 1, 1.0)
    assert [link.url for link in row.links] == ["https://shop.example/app"]


def test_push_results_count_clicks_as_opens(world: Any) -> None:
    campaign = campaign_make(world.acme, keys="A", channel=Channel.PUSH)
    occ = occurrence_make(campaign)
    r1, r2 = recipient_make(occ, "A"), recipient_make(occ, "A")
    outcome_make(r1, outcomes.PUSH_CLICKED, url="https://shop.example/app")
    outcome_make(r1, outcomes.PUSH_CLICKED, url="https://shop.example/app")
    assert r2.pk

    row = by_key(results_at(campaign))["A"]

    assert (row.opens, row.clicks) == (1, 1)
    assert [(link.url, link.unique, link.total) for link in row.links] == [
        ("https://shop.example/app", 1, 2)
    ]


def test_the_winner_is_marked_and_the_rest_waiting_are_counted(world: Any) -> None:
    campaign = campaign_make(world.acme, test_percent=20)
    occ = occurrence_make(campaign)
    recipient_make(occ, "A")
    recipient_make(occ, "B")
    for _ in range(3):
        recipient_make(occ, None, released=False)
    occ.winner = Variant.objects.get(campaign=campaign, key="B")
    occ.save(update_fields=["winner"])

    results = results_at(campaign)

    assert [row.winner for row in results.variants] == [False, True]
    assert results.waiting == 3
    assert results.total.recipients == 2


def test_the_chart_goes_by_the_hour_then_by_the_day(world: Any) -> None:
    campaign = campaign_make(world.acme, keys="A")
    occ = occurrence_make(campaign)
    r1, r2 = recipient_make(occ, "A"), recipient_make(occ, "A")
    opened(r1, T0 + timedelta(minutes=10))
    opened(r2, T0 + timedelta(hours=2, minutes=5))
    clicked(r2, "https://shop.example/", T0 + timedelta(hours=2, minutes=6))
    ordered(r2, T0 + timedelta(hours=2, minutes=30))

    hourly = results_at(campaign, T0 + timedelta(hours=5, minutes=30)).series
    daily = results_at(campaign, T0 + timedelta(days=4)).series

    assert hourly.bucket == "hour"
    assert [(p.opens, p.clicks, p.conversions) for p in hourly.points] == [
        (1, 0, 0),
        (0, 0, 0),
        (1, 1, 1),
        (0, 0, 0),
        (0, 0, 0),
        (0, 0, 0),
    ]
    assert hourly.points[0].at == T0
    assert daily.bucket == "day"
    assert len(daily.points) == 5  # the start's day and four more
    assert (daily.points[0].opens, daily.points[0].clicks, daily.points[0].conversions) == (2, 1, 1)


def test_the_daily_chart_is_in_the_teams_time_zone(world: Any) -> None:
    world.acme.timezone = "America/New_York"
    world.acme.save(update_fields=["timezone"])
    campaign = campaign_make(world.acme, keys="A")
    occ = occurrence_make(campaign)  # 09:00 UTC is 04:00 in New York
    r = recipient_make(occ, "A")
    opened(r, T0 + timedelta(hours=16))  # 01:00 UTC the next day, 20:00 the same day in NY

    series = results_at(campaign, T0 + timedelta(days=3)).series

    assert series.points[0].at.hour == 0 and series.points[0].opens == 1
    assert series.points[0].at.utcoffset() == timedelta(hours=-5)


def test_results_take_a_fixed_number_of_queries(
    world: Any, django_assert_max_num_queries: Any
) -> None:
    campaign = campaign_make(world.acme, keys="ABC", holdout_percent=10)
    occ = occurrence_make(campaign)
    for key in "ABC":
        for i in range(5):
            r = recipient_make(occ, key)
            opened(r)
            clicked(r, f"https://shop.example/{i % 2}")
            ordered(r, T0 + timedelta(hours=1), revenue=1)
    recipient_make(occ, None, holdout=True)

    with (
        time_machine.travel(T0 + timedelta(hours=3), tick=False),
        django_assert_max_num_queries(8),
    ):
        results = selectors.campaign_results(campaign=campaign, occurrence=occ)

    assert results is not None
    assert [row.clicks for row in results.variants] == [5, 5, 5]
    assert results.total.revenue == Decimal("15.00")


def test_variant_metric_stats_leave_out_the_holdout_and_the_waiting(world: Any) -> None:
    campaign = campaign_make(world.acme, holdout_percent=10)
    occ = occurrence_make(campaign)
    a = recipient_make(occ, "A")
    recipient_make(occ, None, holdout=True)
    recipient_make(occ, None, released=False)
    opened(a)
    clicked(a, "https://shop.example/")
    ordered(a, T0 + timedelta(hours=1))

    stats = selectors.variant_metric_stats(occurrence=occ)

    assert stats == {
        "A": selectors.VariantStats(recipients=1, sent=1, opens=1, clicks=1, conversions=1),
        "B": selectors.VariantStats(),
    }


def test_outcomes_recorded_by_the_messages_own_links_are_counted(world: Any, client: Any) -> None:
    """Through the links a reader follows (open pixel, click redirect, one-click unsubscribe),
    so the results read the events exactly as messaging records them."""
    from urllib.parse import urlsplit

    from messaging import links

    def path(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    campaign = campaign_make(world.acme, keys="A")
    occ = occurrence_make(campaign)
    reader, clicker, leaver = (recipient_make(occ, "A") for _ in range(3))
    # The clock ticks: each click is its own fact, named by its moment.
    with time_machine.travel(T0 + timedelta(minutes=20)):
        assert reader.delivery and clicker.delivery and leaver.delivery
        assert client.get(path(links.open_url(reader.delivery))).status_code == 200
        assert client.get(path(links.open_url(reader.delivery))).status_code == 200
        for url in ("https://shop.example/a", "https://shop.example/a", "https://shop.example/b"):
            response = client.get(path(links.click_url(clicker.delivery, url)))
            assert response.status_code == 302, response
        assert client.post(path(links.unsubscribe_url(leaver.delivery))).status_code == 200

    row = by_key(results_at(campaign))["A"]

    assert (row.opens, row.clicks, row.unsubscribes) == (2, 1, 1)  # a click proves an open
    assert [(link.url, link.unique, link.total) for link in row.links] == [
        ("https://shop.example/a", 1, 2),
        ("https://shop.example/b", 1, 1),
    ]
