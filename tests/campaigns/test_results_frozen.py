"""Campaign results outlive the raw events they are counted from (campaigns/results.py, "Kept
results"): the tick keeps an occurrence's results once its goal window has passed, retention's
hook keeps them before removing the events, and the results page and the API read the kept copy,
so the numbers an old campaign showed stay what they were after retention has run."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.urls import reverse

from audience import registry
from audience.models import Event
from audience.partitions import partitions_ensure, partitions_secure
from audience.retention import retention_apply
from audience.services import Fact, events_record
from campaigns import dispatch, results, selectors, services
from campaigns.models import Campaign, Occurrence
from campaigns.tasks import campaigns_tick
from messaging import outbox, outcomes
from messaging.models import Channel, Delivery
from tests.campaigns import test_results as seed
from tests.campaigns.conftest import campaign_make, email_template, people, segment_of

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # the campaign goes out
AFTER_WINDOW = T0 + timedelta(days=4)  # its 72 h goal window after the finish has passed
LATER = datetime(2026, 6, 15, 3, 17, tzinfo=UTC)  # a nightly run keeping 1 month: cutoff 1 May
ORDER = "Order Completed"


@pytest.fixture(autouse=True)
def _secured(db: None) -> None:
    """Partitions' row security as `migrate` leaves it, before any row is written (as in
    tests/audience/test_retention.py)."""
    partitions_secure()


def keep_months(tenant: Any, months: int) -> None:
    tenant.event_retention_months = months
    tenant.save(update_fields=["event_retention_months"])


def sent_campaign(world: Any, tenant: Any = None) -> tuple[Campaign, Occurrence]:
    """A campaign with two variants and a hold-out, sent for real at T0 (freeze, release, the
    email sender, the finish), with opens, clicks, a bounce, an unsubscribe and orders recorded
    as messaging and ingestion record them, within the goal window."""
    tenant = tenant or world.acme
    readers = people(tenant, 30, prefix="r")
    campaign = campaign_make(
        world,
        tenant=tenant,
        segments=[segment_of(tenant, readers)],
        variants=[
            (email_template(tenant, "Spring A"), 50),
            (email_template(tenant, "Spring B"), 50),
        ],
        holdout_percent=20,
        goal_event=ORDER,
        goal_window_hours=72,
    )
    with time_machine.travel(T0, tick=False):
        services.campaign_schedule(campaign=campaign)
        campaign.refresh_from_db()
        occurrence = dispatch.campaign_start_due(campaign=campaign)
        assert occurrence is not None
        dispatch.occurrence_release(occurrence=occurrence)
        outbox.deliveries_send(channel=Channel.EMAIL, seconds=5)
        assert dispatch.occurrence_finish_if_done(occurrence=occurrence)
    occurrence.refresh_from_db()
    deliveries = list(
        Delivery.objects.filter(tenant=tenant, status=Delivery.Status.SENT).order_by("pk")
    )
    assert len(deliveries) >= 12
    held = list(
        occurrence_recipients(occurrence).filter(holdout=True).values_list("contact_id", flat=True)
    )
    assert held, "the hold-out of 30 at 20 % is never empty with this seed"
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        outcomes.record([(d, outcomes.EMAIL_OPENED, {"via": "pixel"}) for d in deliveries[:10]])
        outcomes.record(
            [
                (d, outcomes.EMAIL_CLICKED, {"url": "https://shop.example/spring"})
                for d in deliveries[:6]
            ],
            unique=False,
        )
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):  # a second click, elsewhere
        outcomes.record(
            [(deliveries[0], outcomes.EMAIL_CLICKED, {"url": "https://shop.example/tents"})],
            unique=False,
        )
        outcomes.record([(deliveries[11], outcomes.EMAIL_BOUNCED, {"reason": "550"})])
        outcomes.record([(deliveries[9], outcomes.UNSUBSCRIBED, {})])
    with time_machine.travel(T0 + timedelta(hours=20), tick=False):
        buyers = [d.contact_id for d in deliveries[:4]] + held[:1]
        events_record(
            tenant=tenant,
            facts=[
                Fact(contact_id, ORDER, f"order-{contact_id}", "test", {"revenue": 20 + i})
                for i, contact_id in enumerate(buyers)
            ],
        )
    return campaign, occurrence


def occurrence_recipients(occurrence: Occurrence) -> Any:
    from campaigns.models import Recipient

    return Recipient.objects.filter(tenant_id=occurrence.tenant_id, occurrence=occurrence)


def page_figures(client: Any, campaign: Campaign) -> dict[str, str]:
    """The results page's figures as a reader sees them: the totals, the table per variant and
    hold-out, the charts and the clicks per link (each section's HTML)."""
    url = reverse("campaign_results", args=[campaign.tenant.slug, campaign.public_id])
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    found = {}
    for name, pattern in {
        "kpis": r'<ul class="kpis".*?</ul>',
        "lift": r'<p class="lift".*?</p>',
        "table": r'<table class="results-table".*?</table>',
        "rates": r'<svg class="chart bar-chart".*?</svg>',
        "series": r'<svg class="chart line-chart".*?</svg>',
        "links": r'<table class="links-table".*?</table>',
    }.items():
        match = re.search(pattern, html, flags=re.S)
        assert match, f"no {name} on the page"
        found[name] = match.group(0)
    found["note"] = "".join(re.findall(r'<p class="muted small" id="results-kept">.*?</p>', html))
    return found


def api_figures(api: Any, campaign: Campaign, tenant: Any = None) -> dict[str, Any]:
    body = api("get", f"campaigns/{campaign.public_id}/stats/", tenant=tenant).json()
    return body


def numbers(body: dict[str, Any]) -> dict[str, Any]:
    """The API's answer less what says whether and when the results were kept."""
    body = dict(body)
    kept = {k: body.pop(k) for k in ("results_frozen_at", "results_final")}
    body["occurrence"] = {k: v for k, v in body["occurrence"].items() if k != "results_frozen_at"}
    assert set(kept) == {"results_frozen_at", "results_final"}
    return body


# --- The whole story --------------------------------------------------------------------------


def test_an_old_campaigns_results_stay_what_they_were_after_retention_removes_its_events(
    world: Any, login: Any, api: Any
) -> None:
    campaign, occurrence = sent_campaign(world)
    client = login(world.bob)
    with time_machine.travel(AFTER_WINDOW, tick=False):
        live_page = page_figures(client, campaign)
        live_api = api_figures(api, campaign)
        assert live_api["results_frozen_at"] is None and live_api["results_final"] is False
        total = live_api["total"]
        assert (total["opens"], total["clicks"], total["bounces"], total["unsubscribes"]) == (
            10,
            6,
            1,
            1,
        )
        assert total["conversions"] == 4 and total["revenue"] == "86.00"
        assert live_api["holdout"]["conversions"] == 1
        assert total["lift_points"] is not None
        assert live_page["note"] == ""

        report = campaigns_tick()  # the beat's clock, in the worker's process scope

    assert report["results_kept"] == 1
    occurrence.refresh_from_db()
    assert occurrence.results_frozen_at == AFTER_WINDOW
    with time_machine.travel(AFTER_WINDOW + timedelta(minutes=1), tick=False):
        kept_api = api_figures(api, campaign)
        kept_page = page_figures(client, campaign)
    assert kept_api["results_final"] is True
    assert numbers(kept_api) == numbers(live_api)
    assert {k: v for k, v in kept_page.items() if k != "note"} == {
        k: v for k, v in live_page.items() if k != "note"
    }
    assert "Final results, frozen on 14 Mar 2026" in kept_page["note"]

    # Months later the nightly retention run removes the team's events of March.
    keep_months(world.acme, 1)
    if connection.vendor == "postgresql":
        partitions_ensure(now=LATER)
    assert Event.objects.filter(tenant=world.acme, occurred_at__lt=LATER - timedelta(days=60))
    removed = retention_apply(now=LATER, batch=5)
    assert removed.rows_deleted.get(world.acme.pk)
    assert not Event.objects.filter(
        tenant=world.acme, occurred_at__lt=datetime(2026, 5, 1, tzinfo=UTC)
    )
    # Counted again from what is left, the numbers would have fallen to nothing…
    recount = results.results_compute(campaign=campaign, occurrence=occurrence)
    assert (recount.total.opens, recount.total.conversions) == (0, 0)

    # … but the page and the API show what they showed before.
    with time_machine.travel(LATER, tick=False):
        client = login(world.bob)
        after_api = api_figures(api, campaign)
        after_page = page_figures(client, campaign)
    assert numbers(after_api) == numbers(live_api)
    assert after_page == kept_page
    assert after_api["results_frozen_at"] == kept_api["results_frozen_at"]


# --- The tick ---------------------------------------------------------------------------------


def test_the_tick_keeps_results_only_once_the_goal_window_after_the_finish_has_passed(
    world: Any,
) -> None:
    campaign = seed.campaign_make(world.acme, keys="A", goal_window_hours=72)
    finished = seed.occurrence_make(campaign, key="2026-11-02T09:00")
    seed.opened(seed.recipient_make(finished, "A"))
    finished_at = seed.T0 + timedelta(hours=1)
    Occurrence.objects.filter(pk=finished.pk).update(
        state=Occurrence.State.SENT, finished_at=finished_at
    )
    # Still sending (its finish never came) long after it started.
    sending = seed.occurrence_make(
        campaign, at=seed.T0 - timedelta(days=30), key="2026-10-03T09:00"
    )
    seed.opened(seed.recipient_make(sending, "A"))

    window_ends = finished_at + timedelta(hours=72)
    assert results.results_freeze_due(at=window_ends - timedelta(seconds=1)) == 0
    assert results.results_freeze_due(at=window_ends) == 1
    finished.refresh_from_db()
    sending.refresh_from_db()
    assert finished.results_frozen_at == window_ends
    assert finished.results["final"] is True
    assert finished.results["total"]["opens"] == 1
    assert sending.results_frozen_at is None
    assert results.results_freeze_due(at=window_ends + timedelta(days=400)) == 0
    sending.refresh_from_db()
    assert sending.results_frozen_at is None


def test_the_tick_reads_each_campaigns_own_goal_window(world: Any) -> None:
    short = seed.campaign_make(world.acme, keys="A", goal_window_hours=1)
    long = seed.campaign_make(world.acme, keys="A", goal_window_hours=2160)
    at = seed.T0 + timedelta(hours=2)
    for campaign in (short, long):
        occurrence = seed.occurrence_make(campaign)
        Occurrence.objects.filter(pk=occurrence.pk).update(
            state=Occurrence.State.SENT, finished_at=seed.T0
        )

    assert results.results_freeze_due(at=at) == 1
    kept = Occurrence.objects.filter(results_frozen_at__isnull=False)
    assert [o.campaign_id for o in kept] == [short.pk]
    assert results.results_freeze_due(at=seed.T0 + timedelta(hours=2160)) == 1


def test_keeping_twice_keeps_the_first(world: Any) -> None:
    campaign = seed.campaign_make(world.acme, keys="A")
    occurrence = seed.occurrence_make(campaign)
    r = seed.recipient_make(occurrence, "A")
    seed.opened(r)
    Occurrence.objects.filter(pk=occurrence.pk).update(
        state=Occurrence.State.SENT, finished_at=seed.T0
    )
    occurrence.refresh_from_db()
    first = seed.T0 + timedelta(days=5)
    assert results.results_freeze(occurrence=occurrence, at=first) is True
    kept = Occurrence.objects.get(pk=occurrence.pk)
    seed.clicked(r, "https://shop.example/late")  # something happens after all

    assert results.results_freeze(occurrence=kept, at=first + timedelta(days=1)) is False
    # Even from a copy of the row read before the first was kept (two workers at once).
    stale = Occurrence.objects.get(pk=occurrence.pk)
    stale.results_frozen_at = None
    assert results.results_freeze(occurrence=stale, at=first + timedelta(days=2)) is False
    assert results.results_freeze_due(at=first + timedelta(days=3)) == 0
    again = Occurrence.objects.get(pk=occurrence.pk)
    assert again.results_frozen_at == first
    assert again.results == kept.results
    assert (again.results["total"]["opens"], again.results["total"]["clicks"]) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_a_tick_passes_over_an_occurrence_another_tick_is_counting(world: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: nothing to race")
    campaign = seed.campaign_make(world.acme, keys="A")
    occurrence = seed.occurrence_make(campaign)
    seed.opened(seed.recipient_make(occurrence, "A"))
    Occurrence.objects.filter(pk=occurrence.pk).update(
        state=Occurrence.State.SENT, finished_at=seed.T0
    )
    at = seed.T0 + timedelta(days=5)
    counting, done = threading.Event(), threading.Event()

    def other_tick() -> None:  # holds the occurrence's row as results_freeze_due does
        try:
            with transaction.atomic():
                Occurrence.objects.select_for_update().get(pk=occurrence.pk)
                counting.set()
                done.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_tick)
    thread.start()
    try:
        assert counting.wait(30)
        assert results.results_freeze_due(at=at) == 0
    finally:
        done.set()
        thread.join()
    assert Occurrence.objects.get(pk=occurrence.pk).results_frozen_at is None
    assert results.results_freeze_due(at=at) == 1


# --- Retention's hook -------------------------------------------------------------------------


def test_retention_keeps_results_before_it_removes_the_events_even_mid_window(
    world: Any, login: Any
) -> None:
    """An occurrence whose events are about to go is kept however far it got: as of then."""
    campaign = seed.campaign_make(world.acme, keys="AB", holdout_percent=10)
    occurrence = seed.occurrence_make(campaign)  # 2 Nov 2026, still sending
    a = [seed.recipient_make(occurrence, "A") for _ in range(3)]
    seed.opened(a[0])
    seed.opened(a[1])
    seed.clicked(a[0], "https://shop.example/new")
    seed.ordered(a[2], seed.T0 + timedelta(hours=3), revenue=12.5)
    newer = seed.occurrence_make(campaign, at=datetime(2026, 12, 2, 9, tzinfo=UTC), key="later")
    seed.opened(seed.recipient_make(newer, "B"))
    with time_machine.travel(seed.T0 + timedelta(hours=10), tick=False):
        before = selectors.campaign_results(campaign=campaign, occurrence=occurrence)
    assert before is not None and before.frozen_at is None
    keep_months(world.acme, 1)
    now = datetime(2026, 12, 15, 3, 17, tzinfo=UTC)  # cutoff 1 Nov: November's events stay
    assert retention_apply(now=now).rows_deleted == {}
    assert not Occurrence.objects.filter(results_frozen_at__isnull=False).exists()

    now = datetime(2027, 1, 2, 3, 17, tzinfo=UTC)  # cutoff 1 Dec: November's go
    with time_machine.travel(now, tick=False):
        report = retention_apply(now=now)
    assert report.rows_deleted.get(world.acme.pk)
    occurrence.refresh_from_db()
    newer.refresh_from_db()
    assert occurrence.results_frozen_at == now
    assert occurrence.results["final"] is False
    assert newer.results_frozen_at is None  # started after the cutoff: its events stay
    after = selectors.campaign_results(campaign=campaign, occurrence=occurrence)
    assert after is not None and after.frozen_at == now and not after.final
    for mine, theirs in zip(after.rows, before.rows, strict=True):
        assert (mine.key, mine.opens, mine.clicks, mine.conversions, mine.revenue, mine.links) == (
            theirs.key,
            theirs.opens,
            theirs.clicks,
            theirs.conversions,
            theirs.revenue,
            theirs.links,
        )
    assert after.total.opens == 2 and after.total.revenue == before.total.revenue

    client = login(world.bob)
    url = reverse("campaign_results", args=["acme", campaign.public_id])
    page = client.get(f"{url}?send={occurrence.public_id}").content.decode()
    assert "Results as of 2 Jan 2027" in page
    assert "Final results" not in page


def test_a_hook_that_fails_stops_retention_before_anything_is_removed(
    world: Any, monkeypatch: Any
) -> None:
    campaign = seed.campaign_make(world.acme, keys="A")
    occurrence = seed.occurrence_make(campaign)
    seed.opened(seed.recipient_make(occurrence, "A"))
    keep_months(world.acme, 1)
    stored = Event.objects.filter(tenant=world.acme).count()

    def broken(*, tenant_id: int, cutoff: datetime) -> None:
        raise RuntimeError("cannot keep")

    monkeypatch.setattr(
        registry, "BEFORE_EVENTS_REMOVED", [*registry.BEFORE_EVENTS_REMOVED, broken]
    )
    with pytest.raises(RuntimeError):
        retention_apply(now=datetime(2027, 6, 1, tzinfo=UTC))
    assert Event.objects.filter(tenant=world.acme).count() == stored


def test_the_hook_keeps_only_its_own_teams_results(world: Any, api: Any) -> None:
    mine = seed.campaign_make(world.acme, keys="A")
    theirs = seed.campaign_make(world.globex, keys="A")
    for campaign in (mine, theirs):
        occurrence = seed.occurrence_make(campaign)
        seed.opened(seed.recipient_make(occurrence, "A"))

    cutoff = datetime(2027, 1, 1, tzinfo=UTC)
    assert results.results_freeze_before(tenant_id=world.acme.pk, cutoff=cutoff) == 1
    assert Occurrence.objects.get(campaign=mine).results_frozen_at is not None
    assert Occurrence.objects.get(campaign=theirs).results_frozen_at is None

    # Through retention: acme keeps 1 month, globex 120; globex's old send is left as it was,
    # counted live from its events, which stay.
    keep_months(world.acme, 1)
    keep_months(world.globex, 120)
    retention_apply(now=datetime(2027, 6, 1, tzinfo=UTC))
    assert Occurrence.objects.get(campaign=theirs).results_frozen_at is None
    assert Event.objects.filter(tenant=world.globex).count() == 1
    with time_machine.travel(datetime(2027, 6, 1, tzinfo=UTC), tick=False):
        body = api("get", f"campaigns/{theirs.public_id}/stats/", tenant=world.globex).json()
        ours = api("get", f"campaigns/{mine.public_id}/stats/").json()
    assert body["results_frozen_at"] is None and body["total"]["opens"] == 1
    assert ours["results_frozen_at"] is not None and ours["total"]["opens"] == 1
    assert Event.objects.filter(tenant=world.acme).count() == 0
