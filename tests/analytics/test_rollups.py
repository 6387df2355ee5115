"""Each metric's definition (analytics/metrics.py) on hand-made histories, recorded through the
real ingestion service and audience's fact API, read back through the selectors; the hook's
statements per chunk, pinned; the rebuild's range, retention and time-zone behaviour."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection

from analytics import metrics
from analytics.metrics import METRICS, STAGE_CHANGED, event_metrics, nps_class
from analytics.models import ActiveDay, DailyMetric, RollupState
from analytics.rebuild import kept_since, rollups_rebuild
from analytics.selectors import metric_series, metric_totals, stage_transitions
from audience.models import Contact, Event, EventKey
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from tests.analytics.test_rollups_property import rollup_tables
from tests.factories import TenantFactory
from tests.statements import statements

pytestmark = pytest.mark.django_db

BERLIN_DAY = date(2026, 11, 10)
_ids = itertools.count()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """An instant given in Berlin's winter time (UTC+1) on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


def send(tenant: Any, when: datetime, **call: Any) -> None:
    """One tracked call at `when`, recorded as it arrives a minute later."""
    call.setdefault("type", "track")
    call.setdefault("messageId", f"m-{next(_ids)}")
    call["timestamp"] = when.isoformat()
    with time_machine.travel(when + timedelta(minutes=1), tick=False):
        calls_record(tenant=tenant, calls=[parse_call(call)])


def fact(
    tenant: Any, contact_id: int, name: str, when: datetime, key: str = "", **props: Any
) -> None:
    source = props.pop("source", "messaging")
    events_record(
        tenant=tenant,
        facts=[Fact(contact_id, name, key or f"k-{next(_ids)}", source, props, when)],
    )


def day_values(tenant: Any, day: date, *keys: str) -> dict[str, int | Decimal]:
    series = metric_series(tenant=tenant, metrics=keys, start=day, end=day)
    return {key: values[0][1] for key, values in series.items()}


def contact(tenant: Any, **ids: str) -> int:
    identity = ids.get("user_id") or ids.get("anonymous_id")
    return next(
        c.pk
        for c in Contact.objects.filter(tenant=tenant)
        if c.user_id == identity or c.identities.filter(value=identity).exists()
    )


@pytest.fixture
def team() -> Any:
    return TenantFactory(timezone="Europe/Berlin")


def assert_rebuild_agrees(team: Any) -> None:
    kept = rollup_tables(team)
    rollups_rebuild(tenant=team)
    assert rollup_tables(team) == kept


def test_the_catalog_has_every_agreed_key_once_in_order() -> None:
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys))
    agreed = [
        "visitors",
        "identified_visitors",
        "new_visitors",
        "returning_visitors",
        "events",
        "page_views",
        "product_views",
        "carts",
        "checkouts",
        "orders",
        "revenue",
        "buyers",
        "first_orders",
        "repeat_orders",
        "email_sent",
        "email_delivered",
        "email_opened",
        "email_clicked",
        "email_unsubscribed",
        "email_bounced",
        "email_complained",
        "push_sent",
        "push_clicked",
        "push_subscribed",
        "nps_responses",
        "nps_promoters",
        "nps_passives",
        "nps_detractors",
    ]
    assert [k for k in keys if k in agreed] == agreed
    assert all(m.label and m.definition.endswith(".") for m in METRICS)


def test_event_names_are_the_producers_own() -> None:
    from audience.orders import ORDER_EVENT
    from messaging import outcomes
    from messaging.push import PUSH_SUBSCRIBED

    assert metrics.ORDER_COMPLETED == ORDER_EVENT
    assert metrics.PUSH_SUBSCRIBED == PUSH_SUBSCRIBED
    assert metrics.MESSAGING == outcomes.SOURCE
    for name in (
        "EMAIL_SENT",
        "EMAIL_DELIVERED",
        "EMAIL_OPENED",
        "EMAIL_CLICKED",
        "EMAIL_BOUNCED",
        "EMAIL_COMPLAINED",
        "PUSH_SENT",
        "PUSH_CLICKED",
        "UNSUBSCRIBED",
    ):
        assert getattr(metrics, name) == getattr(outcomes, name)
    try:
        from audience.stages import STAGE_CHANGED as stages_name
    except ImportError:  # audience/stages.py not there yet
        return
    assert stages_name == STAGE_CHANGED


def test_visitors_are_contacts_with_tracked_events_on_their_local_day(team: Any) -> None:
    # 23:30 UTC on the 9th is 00:30 on the 10th in Berlin.
    send(team, at(BERLIN_DAY, 0, 30), anonymousId="a1", event="Product Viewed")
    send(team, at(BERLIN_DAY, 9), anonymousId="a1", type="page", name="Home")
    send(team, at(BERLIN_DAY, 10), anonymousId="a2", event="Checkout Started")
    a3_created = at(BERLIN_DAY - timedelta(days=3), 12)
    send(team, a3_created, anonymousId="a3", event="Signed Up")
    send(team, at(BERLIN_DAY, 11), anonymousId="a3", event="Product Viewed")
    # A fact (a message outcome) is no visit, and no tracked event.
    fact(team, contact(team, anonymous_id="a2"), "Email Sent", at(BERLIN_DAY, 12), channel="email")

    figures = day_values(
        team,
        BERLIN_DAY,
        "visitors",
        "new_visitors",
        "returning_visitors",
        "events",
        "page_views",
        "product_views",
        "checkouts",
        "email_sent",
    )
    assert figures == {
        "visitors": 3,
        "new_visitors": 2,
        "returning_visitors": 1,
        "events": 4,
        "page_views": 1,
        "product_views": 2,
        "checkouts": 1,
        "email_sent": 1,
    }
    assert day_values(team, BERLIN_DAY - timedelta(days=1), "visitors", "events") == {
        "visitors": 0,
        "events": 0,
    }
    assert_rebuild_agrees(team)


def test_identifying_makes_a_visitors_earlier_days_identified_and_merges_count_once(
    team: Any,
) -> None:
    monday, tuesday = BERLIN_DAY, BERLIN_DAY + timedelta(days=1)
    send(team, at(monday, 9), anonymousId="anon", event="Product Viewed")
    send(team, at(monday, 10), userId="ann", event="Product Viewed")  # another device, known
    assert day_values(team, monday, "visitors", "identified_visitors") == {
        "visitors": 2,
        "identified_visitors": 1,
    }
    # On Tuesday the anonymous visitor signs in as ann: one person, known, on both days.
    send(team, at(tuesday, 9), userId="ann", anonymousId="anon", type="identify")
    assert Contact.objects.filter(tenant=team).count() == 1
    assert day_values(team, monday, "visitors", "identified_visitors", "new_visitors") == {
        "visitors": 1,
        "identified_visitors": 1,
        "new_visitors": 1,
    }
    assert day_values(team, tuesday, "visitors", "returning_visitors") == {
        "visitors": 1,
        "returning_visitors": 1,
    }
    assert_rebuild_agrees(team)


def test_an_email_given_in_the_ui_identifies_the_visitor_after_commit(team: Any) -> None:
    from analytics.rollups import contacts_reconcile
    from audience.services import contact_update

    send(team, at(BERLIN_DAY, 9), anonymousId="anon", event="Product Viewed")
    pk = contact(team, anonymous_id="anon")
    contact_update(
        tenant=team, contact=Contact.objects.get(pk=pk), fields={"email": "a@x.io"}, source="ui"
    )
    contacts_reconcile(tenant=team, contact_ids=[pk])  # contacts_changed's receiver
    assert day_values(team, BERLIN_DAY, "identified_visitors") == {"identified_visitors": 1}
    assert_rebuild_agrees(team)


def test_carts_are_contacts_and_repeats_count_once(team: Any) -> None:
    call = {"anonymousId": "a1", "event": "Product Added", "properties": {"sku": "s1"}}
    send(team, at(BERLIN_DAY, 9), **call)
    send(team, at(BERLIN_DAY, 10), **call)
    send(team, at(BERLIN_DAY, 11), **call, messageId="same")
    send(team, at(BERLIN_DAY, 11), **call, messageId="same")  # a retry: stored once
    assert day_values(team, BERLIN_DAY, "carts", "events") == {"carts": 1, "events": 3}
    assert_rebuild_agrees(team)


def test_orders_revenue_buyers_first_second_and_repeat_orders(team: Any) -> None:
    monday, tuesday = BERLIN_DAY, BERLIN_DAY + timedelta(days=1)

    def order(when: datetime, user: str, total: Any) -> None:
        send(team, when, userId=user, event="Order Completed", properties={"total": total})

    order(at(tuesday, 9), "ann", 5)
    order(at(tuesday, 10), "ann", 19.99)
    order(at(tuesday, 10), "bob", "a lot")  # no number: counts, worth 0
    keys = ("orders", "revenue", "buyers", "first_orders", "second_orders", "repeat_orders")
    assert day_values(team, tuesday, *keys) == {
        "orders": 3,
        "revenue": Decimal("24.99"),
        "buyers": 2,
        "first_orders": 2,
        "second_orders": 1,
        "repeat_orders": 1,
    }
    # Ann's order of Monday arrives late: her first order moves to Monday.
    order(at(monday, 20), "ann", 1)
    assert day_values(team, monday, *keys) == {
        "orders": 1,
        "revenue": Decimal(1),
        "buyers": 1,
        "first_orders": 1,
        "second_orders": 0,
        "repeat_orders": 0,
    }
    assert day_values(team, tuesday, *keys) == {
        "orders": 3,
        "revenue": Decimal("24.99"),
        "buyers": 2,
        "first_orders": 1,
        "second_orders": 1,
        "repeat_orders": 2,
    }
    totals = metric_totals(tenant=team, metrics=keys, start=monday, end=tuesday)
    assert totals["orders"] == 4 and totals["first_orders"] == 2 and totals["second_orders"] == 1
    assert_rebuild_agrees(team)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's xmin")
def test_an_order_sent_again_after_retention_removed_its_event_counts_once(team: Any) -> None:
    call = {"userId": "ann", "event": "Order Completed", "properties": {"total": 10}}
    send(team, at(BERLIN_DAY, 9), messageId="o-1", **call)
    # Retention removes the event and its key; the ledger keeps the order.
    Event.objects.filter(tenant=team, message_id="o-1").delete()
    EventKey.objects.filter(tenant=team, message_id="o-1").delete()
    send(team, at(BERLIN_DAY, 9), messageId="o-1", **call)
    assert day_values(team, BERLIN_DAY, "orders", "revenue", "events") == {
        "orders": 1,
        "revenue": Decimal(10),
        "events": 2,
    }


def test_message_outcomes_first_opens_and_first_clicks(team: Any) -> None:
    send(team, at(BERLIN_DAY, 8), userId="ann", type="identify")
    ann = contact(team, user_id="ann")
    monday, tuesday = BERLIN_DAY, BERLIN_DAY + timedelta(days=1)
    for name in ("Email Sent", "Email Delivered", "Email Opened", "Push Sent"):
        fact(team, ann, name, at(monday, 9), key=f"d1:{name}", delivery_id="d1")
        fact(team, ann, name, at(monday, 9), key=f"d1:{name}", delivery_id="d1")  # once
    fact(team, ann, "Email Bounced", at(monday, 9), delivery_id="d2")
    fact(team, ann, "Email Marked as Spam", at(monday, 9), delivery_id="d3")
    fact(team, ann, "Email Link Clicked", at(tuesday, 9), delivery_id="d1")
    fact(team, ann, "Email Link Clicked", at(tuesday, 10), delivery_id="d1")
    fact(team, ann, "Push Clicked", at(tuesday, 9), delivery_id="p1")
    fact(team, ann, "Unsubscribed", at(tuesday, 9), channel="email")
    fact(team, ann, "Unsubscribed", at(tuesday, 9), channel="push")
    keys = (
        "email_sent",
        "email_delivered",
        "email_opened",
        "email_bounced",
        "email_complained",
        "push_sent",
        "email_clicked",
        "push_clicked",
        "email_unsubscribed",
        "events",
    )
    assert day_values(team, monday, *keys) == {
        "email_sent": 1,
        "email_delivered": 1,
        "email_opened": 1,
        "email_bounced": 1,
        "email_complained": 1,
        "push_sent": 1,
        "email_clicked": 0,
        "push_clicked": 0,
        "email_unsubscribed": 0,
        "events": 1,  # ann's identify call: facts are no tracked events
    }
    assert day_values(team, tuesday, "email_clicked", "push_clicked", "email_unsubscribed") == {
        "email_clicked": 1,
        "push_clicked": 1,
        "email_unsubscribed": 1,
    }
    # A click of Monday evening reported late: the message's first click moves to Monday.
    fact(team, ann, "Email Link Clicked", at(monday, 22), delivery_id="d1")
    assert day_values(team, monday, "email_clicked")["email_clicked"] == 1
    assert day_values(team, tuesday, "email_clicked")["email_clicked"] == 0
    assert_rebuild_agrees(team)


def test_nps_answers_by_score(team: Any) -> None:
    for n, score in enumerate([10, 9, 8, 3, 0, "9", 11, -1, True, 6.5]):
        send(
            team,
            at(BERLIN_DAY, 9),
            anonymousId=f"a{n}",
            event="NPS Submitted",
            properties={"score": score},
        )
    assert day_values(
        team, BERLIN_DAY, "nps_responses", "nps_promoters", "nps_passives", "nps_detractors"
    ) == {"nps_responses": 6, "nps_promoters": 2, "nps_passives": 1, "nps_detractors": 3}
    assert nps_class({"score": 9.0}) == "promoter" and nps_class({"score": "9"}) == ""
    assert_rebuild_agrees(team)


def test_push_subscriptions_and_what_facts_do_not_count() -> None:
    assert event_metrics(type="track", name="Push Subscribed", fact=False, source="push") == (
        "events",
        "push_subscribed",
    )
    # Someone else's tool reporting emails through the tracking API is not Wayfarer's email.
    assert event_metrics(type="track", name="Email Opened", fact=False, source="http") == (
        "events",
    )
    assert event_metrics(type="track", name="Segment Entered", fact=True, source="segments") == ()


def test_stage_changes_roll_up_per_day_and_move(team: Any) -> None:
    send(team, at(BERLIN_DAY, 8), userId="ann", type="identify")
    ann = contact(team, user_id="ann")
    for old, new in [("", "awareness"), ("awareness", "acquisition"), ("awareness", "acquisition")]:
        fact(
            team,
            ann,
            STAGE_CHANGED,
            at(BERLIN_DAY, 9),
            source="lifecycle",
            **{"from": old, "to": new, "reason": "test"},
        )
    assert stage_transitions(tenant=team, start=BERLIN_DAY, end=BERLIN_DAY) == [
        ("awareness", "acquisition", 2),
        ("", "awareness", 1),
    ]
    assert (
        stage_transitions(
            tenant=team, start=BERLIN_DAY + timedelta(days=1), end=BERLIN_DAY + timedelta(days=9)
        )
        == []
    )
    assert_rebuild_agrees(team)


@pytest.mark.parametrize("size", [1, 20, 60])
def test_a_chunk_costs_the_same_statements_whatever_its_size(team: Any, size: int) -> None:
    """What the hook adds to a chunk of visits, orders, clicks and stage moves: counted around
    the same recording with and without it, at three sizes."""
    from analytics.rollups import events_stored
    from audience import registry

    calls = [
        {
            "type": "track",
            "messageId": f"{size}-{event}-{i}",
            "anonymousId": f"v{i}",
            "event": event,
            "properties": {"total": 3},
            "timestamp": at(BERLIN_DAY, 9).isoformat(),
        }
        for i in range(size)
        for event in ("Product Added", "Order Completed")
    ]
    send(team, at(BERLIN_DAY, 8), userId="ann", type="identify")
    ann = contact(team, user_id="ann")

    def record(prefix: str) -> None:
        calls_record(
            tenant=team,
            calls=[
                parse_call(
                    {
                        **c,
                        "messageId": f"{prefix}{c['messageId']}",
                        "anonymousId": f"{prefix}{c['anonymousId']}",
                    }
                )
                for c in calls
            ],
        )
        events_record(
            tenant=team,
            facts=[
                Fact(ann, name, f"{prefix}{size}-{name}-{i}", source, props, at(BERLIN_DAY, 9))
                for i in range(size)
                for name, source, props in (
                    ("Email Link Clicked", "messaging", {"delivery_id": f"{prefix}d{i}"}),
                    (STAGE_CHANGED, "lifecycle", {"from": "", "to": "awareness"}),
                )
            ],
        )

    with statements() as sent:
        record("with-")
    registry.EVENTS_STORED.remove(events_stored)
    try:
        with statements() as without:
            record("without-")
    finally:
        registry.events_stored_register(events_stored)
    # Per recording call: the lock and the metrics' upsert. The tracked chunk: on PostgreSQL
    # one read of the new orders with their contacts' first two orders and rank rows, one
    # statement for every distinct row (visits, carts, buyers, ranks); on SQLite no lock, and
    # the contacts' flags, the insert, the stale flags, the orders and their ranks apart. The
    # facts: first clicks (a read, an insert) and the stage moves.
    pinned = {"postgresql": 9, "sqlite": 12}[connection.vendor]
    assert len(sent) - len(without) == pinned


def test_the_rebuild_starts_where_retention_keeps_events_and_keeps_older_days(team: Any) -> None:
    team.event_retention_months = 1
    team.save()
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    old = datetime(2026, 10, 20, 12, tzinfo=UTC)
    send(team, old, anonymousId="a1", event="Product Viewed")
    send(team, now, anonymousId="a1", event="Product Viewed")
    with time_machine.travel(now, tick=False):
        # The cutoff, 1 November 00:00 UTC, is 01:00 in Berlin: that day is partly gone.
        assert kept_since(team) == date(2026, 11, 2)
        Event.objects.filter(
            tenant=team, occurred_at__lt=datetime(2026, 11, 1, tzinfo=UTC)
        ).delete()
        report = rollups_rebuild(tenant=team, start=date(2026, 1, 1))
    assert report.start == date(2026, 11, 2) and report.notes
    # October's figures were counted when its events were stored: they stay.
    assert day_values(team, date(2026, 10, 20), "visitors")["visitors"] == 1
    assert day_values(team, date(2026, 12, 7), "visitors")["visitors"] == 1


def test_a_new_time_zone_moves_the_days(
    team: Any, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    send(team, datetime(2026, 11, 10, 23, 30, tzinfo=UTC), anonymousId="a1", event="X")
    assert day_values(team, date(2026, 11, 11), "visitors")["visitors"] == 1  # Berlin
    rollups_rebuild(tenant=team)
    assert RollupState.objects.get(tenant=team).timezone == "Europe/Berlin"
    team.timezone = "America/New_York"
    with django_capture_on_commit_callbacks(execute=True):
        team.save()
    assert RollupState.objects.get(tenant=team).timezone == "America/New_York"
    assert day_values(team, date(2026, 11, 10), "visitors")["visitors"] == 1
    assert day_values(team, date(2026, 11, 11), "visitors")["visitors"] == 0
    assert DailyMetric.objects.filter(tenant=team, day=date(2026, 11, 11)).count() == 0
    assert ActiveDay.objects.filter(tenant=team, day=date(2026, 11, 10)).count() == 1


def test_the_hourly_task_snapshots_stages_and_rechecks_yesterday(team: Any) -> None:
    from analytics.models import StageSnapshot
    from analytics.tasks import rollups_tick

    send(team, at(BERLIN_DAY, 9), anonymousId="a1", event="Product Viewed")
    # A figure gone wrong (a crash between two commits): yesterday's re-check sets it right.
    DailyMetric.objects.filter(tenant=team, day=BERLIN_DAY, metric="visitors").update(value=7)
    first_hour = at(BERLIN_DAY + timedelta(days=1), 0, 30)
    with time_machine.travel(first_hour, tick=False):
        rollups_tick(now=first_hour)
    assert day_values(team, BERLIN_DAY, "visitors")["visitors"] == 1
    days = set(StageSnapshot.objects.filter(tenant=team).values_list("day", flat=True))
    assert days == {BERLIN_DAY, BERLIN_DAY + timedelta(days=1)}
    total = sum(
        StageSnapshot.objects.filter(tenant=team, day=BERLIN_DAY).values_list("contacts", flat=True)
    )
    assert total == Contact.objects.filter(tenant=team).count() == 1


@pytest.mark.parametrize("months", [1, 3, 13, 25])
@pytest.mark.parametrize(
    "now", [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)]
)
def test_the_rebuild_floor_is_retentions_own_cutoff(team: Any, months: int, now: datetime) -> None:
    from analytics.rebuild import retention_cutoff
    from audience.retention import retention_cutoff as retentions

    team.event_retention_months = months
    assert retention_cutoff(team, now=now) == retentions(team, now=now)
