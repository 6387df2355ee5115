"""The journey map page: the six stages' counts, the moves between them over a period, and the
journeys and campaigns acting on each stage; its period picker, CSV and tenancy."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db.models import Count
from django.urls import reverse

from audience.models import Contact, Event, LifecycleStage
from audience.services import Fact, events_record
from campaigns.models import CampaignSegment
from journeys.models import Enrollment
from segments.models import Segment
from tests.journeys.conftest import journey_build

pytestmark = pytest.mark.django_db

STAGE_CHANGED = "Lifecycle Stage Changed"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
STAGES = list(LifecycleStage.values)


def url(slug: str = "acme", **query: str) -> str:
    base = reverse("journey_map", args=[slug])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def contacts(tenant: Any, stage: str, n: int) -> None:
    Contact.objects.bulk_create(
        Contact(
            tenant=tenant, email=f"{stage}-{i}-{uuid.uuid4().hex[:6]}@x.test", lifecycle_stage=stage
        )
        for i in range(n)
    )


def shown_counts(html: str) -> dict[str, int]:
    strip = html[html.index('id="stage-counts"') :]
    strip = strip[: strip.index("</ol>")]
    return {
        stage: int(n)
        for stage, n in re.findall(r'data-stage="(\w+)">.*?data-count="(\d+)"', strip, re.S)
    }


def moves_table(html: str) -> dict[tuple[str, str], int]:
    table = html[html.index('id="transitions-table"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td class=\"num\">([\d,]+)</td></tr>", table
    )
    return {(f, t): int(n.replace(",", "")) for f, t, n in rows}


def stage_changed(tenant: Any, contact: Contact, old: str, new: str, at: datetime) -> None:
    events_record(
        tenant=tenant,
        facts=[
            Fact(
                contact.pk,
                STAGE_CHANGED,
                str(uuid.uuid4()),
                "lifecycle",
                {"from": old, "to": new, "reason": "test"},
                at,
            )
        ],
    )


# --- counts ------------------------------------------------------------------------------------


def test_the_maps_counts_equal_a_direct_query(world: Any, login: Any) -> None:
    for i, stage in enumerate(STAGES):
        contacts(world.acme, stage, i * 2 + 1)
    contacts(world.globex, STAGES[0], 7)  # another team's never counts

    response = login(world.bob).get(url())  # a viewer may read it

    assert response.status_code == 200
    direct = dict(
        Contact.objects.filter(tenant=world.acme)
        .values_list("lifecycle_stage")
        .annotate(n=Count("pk"))
        .order_by()
    )
    assert shown_counts(response.content.decode()) == {s: direct.get(s, 0) for s in STAGES}


def test_it_shows_every_stage_in_order_with_zero_when_empty(world: Any, login: Any) -> None:
    response = login(world.alice).get(url())

    html = response.content.decode()
    assert list(shown_counts(html)) == STAGES
    assert set(shown_counts(html).values()) == {0}
    assert "Retention risk" in html
    assert "No contact changed stage" in html


def test_the_page_names_the_teams_time_zone(world: Any, login: Any) -> None:
    world.acme.timezone = "Europe/Paris"
    world.acme.save(update_fields=["timezone"])

    html = login(world.alice).get(url()).content.decode()

    assert "Europe/Paris" in html


# --- moves -------------------------------------------------------------------------------------


def test_the_moves_equal_the_stage_change_events_of_the_period(world: Any, login: Any) -> None:
    people = list(
        Contact.objects.bulk_create(
            Contact(tenant=world.acme, email=f"m{i}@x.test", lifecycle_stage="acquisition")
            for i in range(6)
        )
    )
    a, o, e = "acquisition", "onboarding", "engagement"
    stage_changed(world.acme, people[0], a, o, NOW - timedelta(days=2))
    stage_changed(world.acme, people[1], a, o, NOW - timedelta(days=3))
    stage_changed(world.acme, people[2], a, o, NOW - timedelta(days=5))
    stage_changed(world.acme, people[2], o, e, NOW - timedelta(days=4))
    stage_changed(world.acme, people[3], "", "awareness", NOW - timedelta(days=1))
    stage_changed(world.acme, people[4], a, o, NOW - timedelta(days=40))  # before the period
    other = Contact.objects.create(tenant=world.globex, email="g@x.test")
    stage_changed(world.globex, other, a, o, NOW - timedelta(days=2))

    with time_machine.travel(NOW, tick=False):
        response = login(world.alice).get(url(range="30"))

    start = NOW - timedelta(days=29, hours=15)
    direct: dict[tuple[str, str], int] = {}
    for props in Event.objects.filter(
        tenant=world.acme, name=STAGE_CHANGED, occurred_at__gte=start
    ).values_list("properties", flat=True):
        key = (props["from"], props["to"])
        direct[key] = direct.get(key, 0) + 1
    labels = {"": "New contacts", **dict(LifecycleStage.choices)}
    assert moves_table(response.content.decode()) == {
        (labels[f], labels[t]): n for (f, t), n in direct.items()
    }
    html = response.content.decode()
    assert 'id="flow-diagram"' in html and 'role="img"' in html
    assert "Acquisition → Onboarding: 3 contacts" in html  # a band's title


def test_a_shorter_period_leaves_older_moves_out(world: Any, login: Any) -> None:
    c = Contact.objects.create(tenant=world.acme, email="x@x.test", lifecycle_stage="onboarding")
    stage_changed(world.acme, c, "acquisition", "onboarding", NOW - timedelta(days=10))

    with time_machine.travel(NOW, tick=False):
        week = login(world.alice).get(url(range="7")).content.decode()
        month = login(world.alice).get(url(range="30")).content.decode()

    assert moves_table(month) == {("Acquisition", "Onboarding"): 1}
    assert "No moves in this period." in week


# --- the period picker ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-10", "2026-11-01", "must not come before"),
        ("2026-11-01", "2026-12-01", "at most"),
        ("2024-01-01", "2026-11-01", "at most 366 days"),
        ("", "2026-11-01", "first day"),
        ("nope", "2026-11-01", "Enter a valid date"),
    ],
)
def test_it_refuses_a_period_it_cannot_show(
    world: Any, login: Any, start: str, end: str, message: str
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = login(world.alice).get(url(range="custom", start=start, end=end))

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'id="period-errors"' in html
    assert 'id="stage-counts"' in html  # the rest of the page still shows


def test_a_custom_period_shows_its_days(world: Any, login: Any) -> None:
    c = Contact.objects.create(tenant=world.acme, email="x@x.test")
    stage_changed(world.acme, c, "awareness", "acquisition", datetime(2026, 10, 5, 12, tzinfo=UTC))

    with time_machine.travel(NOW, tick=False):
        response = login(world.alice).get(url(range="custom", start="2026-10-01", end="2026-10-10"))

    assert response.status_code == 200
    assert moves_table(response.content.decode()) == {("Awareness", "Acquisition"): 1}


# --- CSV -----------------------------------------------------------------------------------------


def rows_of(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_stages_and_the_moves_download_as_csv(world: Any, login: Any) -> None:
    contacts(world.acme, "engagement", 3)
    c = Contact.objects.create(tenant=world.acme, email="x@x.test")
    stage_changed(world.acme, c, "awareness", "acquisition", NOW - timedelta(days=1))

    with time_machine.travel(NOW, tick=False):
        stages_csv = login(world.alice).get(url(range="7", format="csv", table="stages"))
        moves_csv = login(world.alice).get(url(range="7", format="csv", table="transitions"))

    assert stages_csv["Content-Type"].startswith("text/csv")
    assert (
        'filename="lifecycle-stages-acme-2026-11-14-2026-11-20.csv"'
        in stages_csv["Content-Disposition"]
    )
    rows = rows_of(stages_csv)
    assert rows[0][:3] == ["Stage", "Contacts now", "Share of contacts (%)"]
    assert [r[0] for r in rows[1:]] == [label for _, label in LifecycleStage.choices]
    by_stage = {r[0]: r for r in rows[1:]}
    assert by_stage["Engagement"][1] == "3"
    assert by_stage["Awareness"][1] == "1"
    assert by_stage["Acquisition"][3] == "1"  # moved in
    moves = rows_of(moves_csv)
    assert "stage-transitions-acme-2026-11-14-2026-11-20.csv" in moves_csv["Content-Disposition"]
    assert moves == [["From stage", "To stage", "Contacts"], ["Awareness", "Acquisition", "1"]]


# --- what acts on each stage ----------------------------------------------------------------------


def rules(*children: dict[str, Any], match: str = "all", negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def lifecycle(*stages: str, operator: str = "in") -> dict[str, Any]:
    return {"type": "lifecycle", "operator": operator, "value": list(stages)}


def actors(html: str, stage: str) -> str:
    start = html.index(f'aria-labelledby="actor-{stage}"')
    return html[start : html.index("</section>", start)]


def test_it_lists_the_journeys_and_campaigns_acting_on_each_stage(world: Any, login: Any) -> None:
    from tests.campaigns.test_results import (
        campaign_make,
        occurrence_make,
        recipient_make,
    )

    vip = Segment.objects.create(
        tenant=world.acme, name="Drifting", rules=rules(lifecycle("retention"))
    )
    welcome = journey_build(
        world.acme,
        {
            "t": (
                "trigger_event",
                {
                    "event": STAGE_CHANGED,
                    "filters": [{"property": "to", "operator": "equals", "value": "onboarding"}],
                },
            ),
            "x": ("exit", {}),
        },
        "t.next>x",
        name="Welcome",
    )
    winback = journey_build(
        world.acme,
        {
            "t": ("trigger_segment", {"segment": str(vip.public_id), "direction": "entered"}),
            "x": ("exit", {}),
        },
        "t.next>x",
        name="Win back",
    )
    journey_build(  # archived: acts on nothing any more
        world.acme,
        {"t": ("trigger_segment", {"segment": str(vip.public_id)}), "x": ("exit", {})},
        "t.next>x",
        name="Old",
        status="archived",
    )
    campaign = campaign_make(world.acme, keys="A")
    CampaignSegment.objects.create(tenant=world.acme, campaign=campaign, segment=vip)
    occurrence = occurrence_make(campaign)
    for _ in range(2):
        recipient_make(occurrence, "A")
    # Another team's journey on the same stage never shows.
    journey_build(
        world.globex,
        {"t": ("trigger_event", {"event": STAGE_CHANGED, "filters": []}), "x": ("exit", {})},
        "t.next>x",
        name="Globex secret",
    )

    version = welcome.versions.get()
    for state, converted in (("waiting", False), ("waiting", False), ("converted", True)):
        Enrollment.objects.create(
            tenant=world.acme,
            journey=welcome,
            version=version,
            contact=Contact.objects.create(tenant=world.acme, email=f"{uuid.uuid4().hex}@x.test"),
            node_key="x",
            state=state,
            converted_at=NOW if converted else None,
            revenue=Decimal("12.50") if converted else None,
        )

    html = login(world.bob).get(url()).content.decode()

    onboarding, retention = actors(html, "onboarding"), actors(html, "retention")
    assert "3 enrolled · 2 active · 1 converted · 12.50 revenue" in onboarding
    assert "Welcome" in onboarding and "Win back" not in onboarding
    assert "stage changed to Onboarding" in onboarding
    assert "Win back" in retention and "Welcome" not in retention
    assert "entering segment “Drifting”" in retention
    assert campaign.name in retention and "2 sent" in retention
    assert "Old" not in html
    assert "Globex secret" not in html
    assert reverse("journey_funnel", args=["acme", welcome.public_id]) in onboarding
    assert reverse("journey_editor", args=["acme", winback.public_id]) in retention


def test_the_map_costs_the_same_number_of_queries_however_many_journeys(
    world: Any, login: Any, django_assert_max_num_queries: Any
) -> None:
    client = login(world.alice)
    segment = Segment.objects.create(
        tenant=world.acme, name="New", rules=rules(lifecycle("onboarding"))
    )

    def journeys(n: int) -> None:
        for _ in range(n):
            journey_build(
                world.acme,
                {"t": ("trigger_segment", {"segment": str(segment.public_id)}), "x": ("exit", {})},
                "t.next>x",
            )

    journeys(1)
    client.get(url())  # warm the session and the caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(url())
    journeys(5)
    with django_assert_max_num_queries(len(one)):
        response = client.get(url())
    assert response.content.decode().count("enrolled ·") == 6
