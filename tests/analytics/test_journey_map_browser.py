"""The journey map, a journey's funnel and the campaign results in a real Chromium against the
live server, at 1366 px and on a 390 px phone: no console errors, nothing wider than the
screen, and screenshots (into /work/wt/_notes/shots/ when that folder exists, else the test's
temporary folder) to look at as a marketer would."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from audience.models import Contact, LifecycleStage
from audience.services import Fact, events_record
from campaigns.models import CampaignSegment
from segments.models import Segment
from tests.analytics.test_funnels import run_journey
from tests.browser import live_context
from tests.campaigns import test_results as seed
from tests.factories import PASSWORD
from tests.journeys.conftest import journey_build

pytestmark = pytest.mark.e2e
expect.set_options(timeout=10_000)

NOTES_SHOTS = Path("/work/wt/_notes/shots")
STAGE_CHANGED = "Lifecycle Stage Changed"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return NOTES_SHOTS if NOTES_SHOTS.is_dir() else tmp_path


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill("bob@example.com")  # a viewer reads analytics
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        yield page
        assert errors == [], f"console errors: {errors}"


def seed_team(world: Any) -> Any:
    """Contacts in every stage, a month of stage changes, journeys and a campaign acting on
    stages, and a journey run through the engine (for its funnel)."""
    tenant = world.acme
    rng = random.Random(15)
    sizes = dict(zip(LifecycleStage.values, (420, 260, 90, 180, 55, 25), strict=True))
    for stage, n in sizes.items():
        Contact.objects.bulk_create(
            Contact(tenant=tenant, email=f"{stage}{i}@shop.test", lifecycle_stage=stage)
            for i in range(n)
        )
    people = list(Contact.objects.filter(tenant=tenant).values_list("pk", flat=True)[:400])
    moves = [
        ("", "awareness", 60),
        ("awareness", "acquisition", 48),
        ("acquisition", "onboarding", 30),
        ("onboarding", "engagement", 22),
        ("engagement", "retention", 9),
        ("retention", "engagement", 4),
        ("engagement", "advocacy", 6),
        ("onboarding", "retention", 3),
    ]
    now = timezone.now()
    facts = [
        Fact(
            rng.choice(people),
            STAGE_CHANGED,
            str(uuid.uuid4()),
            "lifecycle",
            {"from": old, "to": new, "reason": "seed"},
            now - timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 20)),
        )
        for old, new, n in moves
        for _ in range(n)
    ]
    events_record(tenant=tenant, facts=facts)

    drifting = Segment.objects.create(
        tenant=tenant,
        name="Drifting customers",
        rules={
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [{"type": "lifecycle", "operator": "in", "value": ["retention"]}],
        },
    )
    journey_build(
        tenant,
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
        name="Welcome series",
    )
    journey_build(
        tenant,
        {
            "t": ("trigger_segment", {"segment": str(drifting.public_id)}),
            "x": ("exit", {}),
        },
        "t.next>x",
        name="Win-back",
    )
    campaign = seed.campaign_make(tenant, keys="A")
    CampaignSegment.objects.create(tenant=tenant, campaign=campaign, segment=drifting)
    occurrence = seed.occurrence_make(campaign, at=now - timedelta(days=2))
    recipients = [seed.recipient_make(occurrence, "A") for _ in range(12)]
    for r in recipients[:7]:
        seed.opened(r, now - timedelta(days=1))
    for r in recipients[:3]:
        seed.clicked(r, "https://shop.example/back", now - timedelta(days=1))
    return run_journey(tenant)


def look(page: Page, path: str, name: str, shots: Path, *parts: str) -> None:
    """Open `path` at both widths: nothing wider than a phone's screen, screenshots saved (of
    the page, and of each of `parts`, CSS selectors, on their own)."""
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
        for part in parts:
            page.locator(part).first.screenshot(
                path=str(shots / f"{name}-{label}-{part.strip('#.')}.png")
            )


def test_the_journey_map_funnel_and_campaign_results_render_cleanly(
    page: Page, world: Any, shots: Path
) -> None:
    journey = seed_team(world)

    look(page, "/t/acme/analytics/journey-map/", "journey-map", shots, "#flow-diagram")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/t/acme/analytics/journey-map/")
    expect(page.get_by_role("heading", name="Journey map")).to_be_visible()
    diagram = page.locator("#flow-diagram")
    expect(diagram).to_be_visible()
    assert diagram.get_attribute("role") == "img"
    expect(page.locator("#stage-counts li")).to_have_count(6)
    expect(page.locator("#stage-actors")).to_contain_text("Welcome series")
    expect(page.locator("#stage-actors")).to_contain_text("Win-back")

    look(
        page,
        f"/t/acme/analytics/journeys/{journey.public_id}/",
        "journey-funnel",
        shots,
        "#funnel-chart",
        "#funnel-table",
    )
    expect(page.locator("#funnel-chart")).to_be_visible()
    expect(page.locator("#funnel-table")).to_contain_text("Yes path")

    look(page, "/t/acme/analytics/journeys/", "journey-funnel-list", shots)
    look(page, "/t/acme/analytics/campaigns/", "campaign-results", shots, "#campaign-results")
    expect(page.locator("#campaign-results")).to_contain_text("58.3 %")  # 7 of 12 opened
