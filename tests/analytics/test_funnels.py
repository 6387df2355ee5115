"""Journey funnels and campaign results: their figures equal what the engine and the campaigns
recorded, they download as CSV, and no other team's journey or campaign shows."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from audience.models import Contact
from audience.services import Fact, events_record
from campaigns import selectors as campaign_selectors
from journeys import engine, reactions
from journeys.models import Enrollment, Journey, Step
from messaging.models import Channel, Template
from tests.campaigns import test_results as seed
from tests.journeys.conftest import journey_build

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OPEN = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)


def track(tenant: Any, contact: Contact, name: str, at: datetime, **properties: Any) -> None:
    """Record an event and let the engine see it, as the events task does."""
    ids = events_record(
        tenant=tenant, facts=[Fact(contact.pk, name, str(uuid.uuid4()), "test", properties, at)]
    )
    reactions.events_process(tenant=tenant, event_ids=ids, now=at)


def vip_journey(tenant: Any, name: str = "Cart rescue") -> Journey:
    """Product Added → VIP? yes: email, then the goal (an order within a day, exits on it);
    no: wait an hour, then exit."""
    template = Template.objects.create(
        tenant=tenant, name=f"{name} mail", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {"type": "attribute", "field": "email", "operator": "contains", "value": "@vip."}
        ],
    }
    return journey_build(
        tenant,
        {
            "t": ("trigger_event", {"event": "Product Added", "filters": []}),
            "b": ("branch_condition", {"rules": rules}),
            "m": ("action_email", {"template": str(template.public_id), "category": "marketing"}),
            "g": (
                "goal",
                {
                    "event": "Order Completed",
                    "amount": 1,
                    "unit": "days",
                    "revenue_property": "revenue",
                },
            ),
            "w": ("wait_delay", {"amount": 1, "unit": "hours"}),
            "x": ("exit", {}),
        },
        "t.next>b b.yes>m m.next>g b.no>w w.next>x",
        name=name,
        exit_on_goal=True,
    )


def run_journey(tenant: Any) -> Journey:
    journey = vip_journey(tenant)
    people = [
        Contact.objects.create(tenant=tenant, email=email, email_consent="granted")
        for email in (
            "a@vip.test",
            "b@vip.test",
            "c@vip.test",
            "d@plain.test",
            "e@plain.test",
        )
    ]
    for person in people:
        track(tenant, person, "Product Added", T0)
    track(tenant, people[0], "Order Completed", T0 + timedelta(minutes=30), revenue="30.00")
    engine.advance_due(now=T0 + timedelta(minutes=90))
    return journey


def cells(html: str, step: str) -> dict[str, str]:
    row = html[html.index(f'data-step="{step}"') :]
    row = row[: row.index("</tr>")]
    return {
        col: re.sub(r"<[^>]+>", "", value).strip()
        for col, value in re.findall(r'data-col="(\w+)">(.*?)</td>', row, re.S)
    }


def number(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def test_the_funnel_equals_the_enrollments_and_steps_of_a_journey_run_by_the_engine(
    world: Any, login: Any
) -> None:
    journey = run_journey(world.acme)

    response = login(world.bob).get(reverse("journey_funnel", args=["acme", journey.public_id]))

    assert response.status_code == 200
    html = response.content.decode()
    steps = Step.objects.filter(tenant=world.acme, enrollment__journey=journey)
    for key in "tbmgwx":
        shown = cells(html, key)
        reached = steps.filter(node_key=key).values("enrollment").distinct().count()
        waiting = Enrollment.objects.filter(journey=journey, node_key=key, state__in=OPEN).count()
        assert number(shown["reached"]) == reached, key
        assert number(shown["waiting"]) == waiting, key
    assert [number(cells(html, k)["reached"]) for k in "tbmgwx"] == [5, 5, 3, 3, 2, 2]
    assert number(cells(html, "g")["waiting"]) == 2
    converted = Enrollment.objects.filter(journey=journey, converted_at__isnull=False)
    assert number(cells(html, "g")["conversions"]) == converted.count() == 1
    assert cells(html, "g")["revenue"] == "30.00"
    assert number(cells(html, "x")["left"]) == 2  # they exited there
    assert number(cells(html, "b")["moved_on"]) == 5
    # The branch shows each path and how many took it.
    assert re.search(r'data-port="b.yes".*?>3</td>', html, re.S)
    assert re.search(r'data-port="b.no".*?>2</td>', html, re.S)
    assert 'id="funnel-chart"' in html and "<title" in html
    assert number(re.sub(r"<[^>]+>", " ", html.split('id="funnel-totals">')[1])) == 5


def test_paths_that_join_are_counted_from_the_steps_and_shown_once(world: Any, login: Any) -> None:
    template = Template.objects.create(
        tenant=world.acme, name="Mail", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {"type": "attribute", "field": "email", "operator": "contains", "value": "@vip."}
        ],
    }
    journey = journey_build(
        world.acme,
        {
            "t": ("trigger_event", {"event": "Product Added", "filters": []}),
            "b": ("branch_condition", {"rules": rules}),
            "m": ("action_email", {"template": str(template.public_id), "category": "marketing"}),
            "x": ("exit", {}),
        },
        "t.next>b b.yes>m m.next>x b.no>x",  # both paths end at the same exit
        name="Joined",
    )
    for email in ("a@vip.test", "b@plain.test", "c@plain.test"):
        person = Contact.objects.create(tenant=world.acme, email=email, email_consent="granted")
        track(world.acme, person, "Product Added", T0)

    html = login(world.alice).get(reverse("journey_funnel", args=["acme", journey.public_id]))
    html = html.content.decode()

    steps = Step.objects.filter(tenant=world.acme, enrollment__journey=journey)
    for key in "tbmx":
        reached = steps.filter(node_key=key).values("enrollment").distinct().count()
        assert number(cells(html, key)["reached"]) == reached, key
    assert number(cells(html, "x")["reached"]) == 3
    assert html.count('data-step="x"') == 1  # shown once, the other path continues there
    assert "continues at" in html


def test_the_funnel_downloads_as_csv(world: Any, login: Any) -> None:
    journey = run_journey(world.acme)

    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        response = login(world.alice).get(
            reverse("journey_funnel", args=["acme", journey.public_id]) + "?format=csv"
        )

    assert "funnel-cart-rescue-acme-" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Depth", "Step", "Kind", "Reached"]
    by_kind = {r[2]: r for r in rows[1:] if r[2] not in ("path", "")}
    assert by_kind["goal"][3] == "3" and by_kind["goal"][-2:] == ["1", "30.00"]
    # Depth first: the yes path, the goal's two ways out inside it, then the no path.
    assert [r[3] for r in rows[1:] if r[2] == "path"] == ["3", "1", "0", "2"]


def test_another_teams_journey_is_a_404_and_never_listed(world: Any, login: Any) -> None:
    theirs = vip_journey(world.globex, name="Globex rescue")
    mine = vip_journey(world.acme, name="Acme rescue")
    client = login(world.alice)

    assert client.get(reverse("journey_funnel", args=["acme", theirs.public_id])).status_code == 404
    listing = client.get(reverse("journey_funnel_list", args=["acme"])).content.decode()
    assert "Acme rescue" in listing and "Globex rescue" not in listing
    assert reverse("journey_funnel", args=["acme", mine.public_id]) in listing


def test_a_journey_without_steps_says_so(world: Any, login: Any) -> None:
    journey = Journey.objects.create(tenant=world.acme, name="Empty")

    html = login(world.alice).get(reverse("journey_funnel", args=["acme", journey.public_id]))

    assert 'id="funnel-empty"' in html.content.decode()


def test_the_funnel_costs_the_same_queries_however_large_the_journey(
    world: Any, login: Any, django_assert_max_num_queries: Any
) -> None:
    small = vip_journey(world.acme, name="Small")
    big = run_journey(world.acme)
    client = login(world.alice)
    client.get(reverse("journey_funnel", args=["acme", small.public_id]))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as empty:
        client.get(reverse("journey_funnel", args=["acme", small.public_id]))
    with django_assert_max_num_queries(len(empty)):
        client.get(reverse("journey_funnel", args=["acme", big.public_id]))


def test_the_list_shows_journey_lists_figures_in_a_fixed_number_of_queries(
    world: Any, login: Any, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from journeys import selectors as journey_selectors

    vip_journey(world.acme, name="Quiet")
    client = login(world.bob)
    url = reverse("journey_funnel_list", args=["acme"])
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    run_journey(world.acme)  # a second journey, with enrollments and a conversion
    vip_journey(world.globex, name="Theirs")

    with django_assert_max_num_queries(len(one)):
        html = client.get(url).content.decode()
    rows = list(csv.reader(io.StringIO(client.get(url + "?format=csv").content.decode())))

    expected = [
        [
            j.name,
            j.get_status_display(),
            str(j.live_number or ""),
            str(j.open_enrollments),
            str(j.conversions),
        ]
        for j in journey_selectors.journey_list(tenant=world.acme)
    ]
    assert rows[1:] == expected
    assert [r[0] for r in rows[1:]] == ["Cart rescue", "Quiet"] and "Theirs" not in html
    assert rows[1][3:] == ["2", "1"]  # two still waiting at the goal, one converted
    assert ">2</td>" in html and ">1</td>" in html


# --- campaign results -----------------------------------------------------------------------------


def sent_campaign(tenant: Any, opens: int, clicks: int, orders: int, n: int = 5) -> Any:
    campaign = seed.campaign_make(tenant, keys="A")
    occurrence = seed.occurrence_make(campaign)
    recipients = [seed.recipient_make(occurrence, "A") for _ in range(n)]
    for r in recipients[:opens]:
        seed.opened(r)
    for r in recipients[:clicks]:
        seed.clicked(r, "https://shop.example/")
    for r in recipients[:orders]:
        seed.ordered(r, seed.T0 + timedelta(hours=2), revenue=20)
    seed.event_make(
        tenant,
        recipients[-1].contact,
        "Email Bounced",
        seed.T0 + timedelta(minutes=5),
        delivery_id=str(recipients[-1].delivery.public_id),
    )
    return campaign


def result_cells(html: str, campaign: Any) -> dict[str, str]:
    row = html[html.index(f'data-campaign="{campaign.public_id}"') :]
    row = row[: row.index("</tr>")]
    return {
        col: re.sub(r"<[^>]+>", "", value).strip()
        for col, value in re.findall(r'data-col="(\w+)">(.*?)</td>', row, re.S)
    }


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def test_campaign_results_equal_each_campaigns_own_figures(world: Any, login: Any) -> None:
    first = sent_campaign(world.acme, opens=3, clicks=1, orders=2)
    second = sent_campaign(world.acme, opens=1, clicks=1, orders=0, n=3)
    theirs = sent_campaign(world.globex, opens=1, clicks=0, orders=0)
    seed.campaign_make(world.acme, keys="A")  # never sent: not listed

    with time_machine.travel(seed.T0 + timedelta(hours=10), tick=False):
        html = (
            login(world.bob).get(reverse("campaign_results_list", args=["acme"])).content.decode()
        )
        own = {c.pk: campaign_selectors.campaign_results(campaign=c).total for c in (first, second)}

    assert theirs.name not in html
    assert html.count("data-campaign=") == 2
    for campaign in (first, second):
        shown, t = result_cells(html, campaign), own[campaign.pk]
        assert number(shown["sent"]) == t.sent
        assert number(shown["delivered"]) == t.delivered
        assert shown["open_rate"] == pct(t.open_rate)
        assert shown["click_rate"] == pct(t.click_rate)
        assert shown["bounce_rate"] == pct(t.bounce_rate)
        assert shown["unsubscribe_rate"] == pct(t.unsubscribe_rate)
        assert number(shown["conversions"]) == t.conversions
        assert shown["revenue"] == f"{t.revenue:,.2f}"
    assert own[first.pk].conversions == 2 and own[first.pk].revenue == Decimal("40.00")
    assert reverse("campaign_results", args=["acme", first.public_id]) in html


def test_campaign_results_sort_by_a_column(world: Any, login: Any) -> None:
    low = sent_campaign(world.acme, opens=1, clicks=0, orders=0)
    high = sent_campaign(world.acme, opens=4, clicks=0, orders=0)
    client = login(world.alice)

    with time_machine.travel(seed.T0 + timedelta(hours=10), tick=False):
        down = client.get(reverse("campaign_results_list", args=["acme"]) + "?sort=-open_rate")
        up = client.get(reverse("campaign_results_list", args=["acme"]) + "?sort=open_rate")
        nonsense = client.get(reverse("campaign_results_list", args=["acme"]) + "?sort=;drop")

    def order(response: Any) -> list[str]:
        return re.findall(r'data-campaign="([0-9a-f-]+)"', response.content.decode())

    assert order(down) == [str(high.public_id), str(low.public_id)]
    assert order(up) == [str(low.public_id), str(high.public_id)]
    assert nonsense.status_code == 200
    assert 'aria-sort="descending"' in down.content.decode()


def test_campaign_results_download_as_csv(world: Any, login: Any) -> None:
    campaign = sent_campaign(world.acme, opens=2, clicks=1, orders=1, n=4)

    with time_machine.travel(seed.T0 + timedelta(hours=10), tick=False):
        response = login(world.alice).get(
            reverse("campaign_results_list", args=["acme"]) + "?format=csv"
        )

    assert (
        'filename="campaign-results-acme-2026-11-02-2026-11-02.csv"'
        in response["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, row = rows[0], rows[1]
    got = dict(zip(header, row, strict=True))
    assert got["Campaign"] == campaign.name
    assert got["Sent"] == "4" and got["Opens"] == "2" and got["Open rate (%)"] == "50.0"
    assert got["Conversions"] == "1" and got["Revenue"] == "20.00"


def test_kept_results_cost_no_query_per_campaign(
    world: Any, login: Any, django_assert_max_num_queries: Any
) -> None:
    from campaigns.models import Occurrence
    from campaigns.results import results_freeze

    client = login(world.alice)

    def kept_campaign() -> None:
        campaign = sent_campaign(world.acme, opens=1, clicks=0, orders=0, n=2)
        for occurrence in Occurrence.objects.filter(campaign=campaign):
            results_freeze(occurrence=occurrence)

    kept_campaign()
    client.get(reverse("campaign_results_list", args=["acme"]))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(reverse("campaign_results_list", args=["acme"]))
    for _ in range(4):
        kept_campaign()
    with django_assert_max_num_queries(len(one)):
        response = client.get(reverse("campaign_results_list", args=["acme"]))
    assert response.content.decode().count("data-campaign=") == 5
