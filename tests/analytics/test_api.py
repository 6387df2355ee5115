"""The analytics API: a team's own figures, named by its time zone, equal to what the rollups
hold; clear 400s for bad questions; never another team's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from audience.segment_spec import parse_call
from audience.services import calls_record

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def track(tenant: Any, user: str, name: str, when: datetime, **props: Any) -> None:
    call = {
        "type": "track",
        "event": name,
        "userId": user,
        "properties": props,
        "messageId": f"{tenant.slug}-{user}-{name}-{when.isoformat()}",
        "timestamp": when.isoformat(),
    }
    calls_record(tenant=tenant, calls=[parse_call(call)])


@pytest.fixture
def history(world: Any) -> Any:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save(update_fields=["timezone"])
    with time_machine.travel(NOW, tick=False):
        yesterday = NOW - timedelta(days=1)
        track(world.acme, "ann", "Product Viewed", yesterday, sku="A")
        track(
            world.acme, "ann", "Order Completed", yesterday, order_id="1", total=40, currency="EUR"
        )
        track(world.acme, "ben", "Product Viewed", NOW)
        # Globex: more of everything, none of which may show in Acme's answers.
        for n in range(5):
            track(world.globex, f"g{n}", "Order Completed", NOW, order_id=str(n), total=99)
    return world


def test_it_answers_each_metric_per_day_with_its_total_in_the_teams_zone(
    history: Any, api: Any
) -> None:
    with time_machine.travel(NOW, tick=False):
        answer = api(
            "get",
            "analytics/metrics/?metrics=visitors,orders,revenue&start=2026-11-18&end=2026-11-20",
        )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["time_zone"], body["start"], body["end"]) == (
        "Europe/Berlin",
        "2026-11-18",
        "2026-11-20",
    )
    by_key = {m["key"]: m for m in body["metrics"]}
    assert [m["key"] for m in body["metrics"]] == ["visitors", "orders", "revenue"]
    assert [d["value"] for d in by_key["visitors"]["series"]] == ["0.00", "1.00", "1.00"]
    assert by_key["visitors"]["total"] == "2.00"
    assert by_key["orders"]["total"] == "1.00"
    assert by_key["revenue"]["total"] == "40.00" and by_key["revenue"]["money"] is True
    assert [d["date"] for d in by_key["orders"]["series"]] == [
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ]


def test_it_defaults_to_the_last_30_days(history: Any, api: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        body = api("get", "analytics/metrics/?metrics=orders").json()
    assert (body["start"], body["end"]) == ("2026-10-22", "2026-11-20")
    assert len(body["metrics"][0]["series"]) == 30


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("", "metrics", "required"),
        ("metrics=visitors,nope", "metrics", "Unknown metric(s): nope"),
        ("metrics=orders&start=2026-11-20&end=2026-11-01", "start", "not be after end"),
        ("metrics=orders&start=2025-01-01&end=2026-11-20", "end", "at most 366 days"),
        ("metrics=orders&start=yesterday", "start", "Date has wrong format"),
    ],
)
def test_it_refuses_a_bad_question_naming_the_field(
    world: Any, api: Any, query: str, field: str, words: str
) -> None:
    answer = api("get", f"analytics/metrics/?{query}")
    assert answer.status_code == 400
    assert words in str(answer.json()), answer.json()
    assert field in str(answer.json())


def test_another_teams_key_reads_only_its_own_figures(history: Any, api: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        acme = api(
            "get", "analytics/metrics/?metrics=orders,revenue&start=2026-11-19&end=2026-11-20"
        ).json()
        globex = api(
            "get",
            "analytics/metrics/?metrics=orders,revenue&start=2026-11-19&end=2026-11-20",
            tenant=history.globex,
        ).json()
    assert [m["total"] for m in acme["metrics"]] == ["1.00", "40.00"]
    assert [m["total"] for m in globex["metrics"]] == ["5.00", "495.00"]
    with time_machine.travel(NOW, tick=False):
        acme_stages = api("get", "analytics/stages/").json()
        globex_stages = api("get", "analytics/stages/", tenant=history.globex).json()
    assert sum(acme_stages["counts"].values()) == 2
    assert sum(globex_stages["counts"].values()) == 5


def test_it_needs_a_secret_key(client: Any, world: Any) -> None:
    assert client.get("/api/v1/analytics/metrics/?metrics=orders").status_code == 401
    assert client.get("/api/v1/analytics/stages/").status_code == 401


def test_it_counts_contacts_per_stage_and_lists_moves(history: Any, api: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        body = api("get", "analytics/stages/?start=2026-11-01&end=2026-11-20").json()
    assert list(body["counts"]) == [
        "awareness",
        "acquisition",
        "onboarding",
        "engagement",
        "retention",
        "advocacy",
    ]
    assert body["time_zone"] == "Europe/Berlin"
    for move in body["transitions"]:
        assert set(move) == {"from_stage", "to_stage", "contacts"}
