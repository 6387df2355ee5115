"""Acceptance: "Rollups equal recomputation from raw events". Hypothesis makes histories of a
few visitors over several days around a daylight-saving change of the team's zone (Berlin,
2026-03-29), tracked through the real ingestion service in random chunks, with repeated
message ids, anonymous visitors identifying themselves (profiles merging), orders, NPS
answers, message outcomes (every click an event, opens once) and stage changes; the tables
kept incrementally must equal what `rollups_rebuild` computes from the stored events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.metrics import STAGE_CHANGED
from analytics.models import ActiveDay, DailyMetric, MessageFirst, StageTransitionDay
from analytics.rebuild import rollups_rebuild
from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

# Berlin leaves winter time at 01:00 UTC on 2026-03-29: that local day has 23 hours.
START = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
HOURS = 4 * 24
ANONYMOUS = ["a0", "a1", "a2", "a3"]
USERS = ["u0", "u1", "u2"]
NAMES = [
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "NPS Submitted",
    "Signed Up",
]
SCORES = [-1, 0, 6, 7, 8, 9, 10, 11, "9", 9.5, True]

moments = st.integers(min_value=0, max_value=HOURS * 60).map(lambda m: START + timedelta(minutes=m))


@st.composite
def a_call(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["track", "track", "track", "page", "identify", "alias"]))
    at = draw(moments)
    call: dict[str, Any] = {
        "type": kind,
        # A small pool: the same message id comes back (a retry), in a chunk or a later one.
        "messageId": f"m{draw(st.integers(0, 60))}",
        "timestamp": at.isoformat(),
    }
    user = draw(st.none() | st.sampled_from(USERS))
    anonymous = draw(st.sampled_from(ANONYMOUS))
    if kind == "alias":
        call.update(userId=draw(st.sampled_from(USERS)), previousId=anonymous)
        return call
    if user is not None:
        call["userId"] = user
    if user is None or draw(st.booleans()):
        call["anonymousId"] = anonymous
    if kind == "page":
        call["name"] = draw(st.sampled_from(["Home", "Cart"]))
    elif kind == "identify":
        if draw(st.booleans()):
            call["traits"] = {"email": f"{anonymous}@example.com"}
    else:
        name = draw(st.sampled_from(NAMES))
        call["event"] = name
        if name == "Order Completed":
            call["properties"] = {"total": draw(st.sampled_from([10, 19.99, 0.01, "x"]))}
        elif name == "NPS Submitted":
            call["properties"] = {"score": draw(st.sampled_from(SCORES))}
    return call


@st.composite
def a_fact(draw: Any) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "Email Sent",
                "Email Opened",
                "Email Link Clicked",
                "Push Clicked",
                "Unsubscribed",
                "Push Sent",
                STAGE_CHANGED,
            ]
        )
    )
    return {
        "name": kind,
        "delivery": f"d{draw(st.integers(0, 3))}",
        "at": draw(moments),
        "channel": draw(st.sampled_from(["email", "push"])),
        "stages": draw(st.sampled_from([("", "awareness"), ("awareness", "acquisition")])),
        "n": draw(st.integers(0, 10**6)),
    }


steps = st.lists(
    st.one_of(
        st.lists(a_call(), min_size=1, max_size=8).map(lambda calls: ("calls", calls)),
        st.lists(a_fact(), min_size=1, max_size=3).map(lambda facts: ("facts", facts)),
    ),
    min_size=1,
    max_size=8,
)


def record_facts(tenant: Any, facts: list[dict[str, Any]]) -> None:
    contacts = list(
        Contact.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True)
    )
    if not contacts:
        return
    recorded = []
    for n, fact in enumerate(facts):
        contact = contacts[fact["n"] % len(contacts)]
        name = fact["name"]
        if name == STAGE_CHANGED:
            old, new = fact["stages"]
            recorded.append(
                Fact(
                    contact,
                    name,
                    f"stage:{fact['n']}:{n}",
                    "lifecycle",
                    {"from": old, "to": new, "reason": "test"},
                    fact["at"],
                )
            )
            continue
        # Opens and sends are once per delivery (their key names it); clicks every time.
        key = f"{fact['delivery']}:{name}"
        if name in ("Email Link Clicked", "Push Clicked"):
            key += f":{fact['n']}:{n}"
        properties = {"delivery_id": fact["delivery"], "channel": fact["channel"]}
        recorded.append(Fact(contact, name, key, "messaging", properties, fact["at"]))
    events_record(tenant=tenant, facts=recorded)


def ingest(tenant: Any, history: list[tuple[str, list[dict[str, Any]]]]) -> None:
    for kind, items in history:
        latest = max(
            i["at"] if kind == "facts" else datetime.fromisoformat(i["timestamp"]) for i in items
        )
        # Contacts are created "now": the moment the chunk arrives, just after its last event.
        with time_machine.travel(latest + timedelta(minutes=1), tick=False):
            if kind == "calls":
                calls_record(tenant=tenant, calls=[parse_call(c) for c in items])
            else:
                record_facts(tenant, items)


def rollup_tables(tenant: Any) -> dict[str, Any]:
    return {
        "metrics": {
            (day, metric): value
            for day, metric, value in DailyMetric.objects.filter(tenant=tenant).values_list(
                "day", "metric", "value"
            )
            if value
        },
        "days": sorted(
            ActiveDay.objects.filter(tenant=tenant).values_list(
                "day", "activity", "contact_id", "identified", "new"
            )
        ),
        "first_clicks": sorted(
            MessageFirst.objects.filter(tenant=tenant).values_list("metric", "delivery_id", "day")
        ),
        "moves": {
            (day, source, to): n
            for day, source, to, n in StageTransitionDay.objects.filter(tenant=tenant).values_list(
                "day", "from_stage", "to_stage", "contacts"
            )
            if n
        },
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps)
def test_incremental_rollups_equal_a_rebuild_from_the_raw_events(history: Any) -> None:
    tenant = TenantFactory(timezone="Europe/Berlin")
    ingest(tenant, history)
    kept = rollup_tables(tenant)
    with time_machine.travel(START + timedelta(hours=HOURS + 2), tick=False):
        rollups_rebuild(tenant=tenant)
    assert rollup_tables(tenant) == kept
