"""The home dashboard and a dashboard page in a real Chromium against the live server, at a
laptop's width and a phone's: no console errors, no CSP refusals, nothing wider than the
screen, the period picker works without JavaScript. Screenshots go to
WAYFARER_SHOTS_DIR (default /work/wt/_notes/shots) for a person to look at.

The figures are seeded as rollup rows (sixty days of a small shop with a weekly rhythm) so the
charts have a shape; test_dashboard.py checks figures against ingested events.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from analytics import selectors
from analytics.models import DailyMetric, StageSnapshot
from audience.models import Contact
from journeys.models import Enrollment, Journey, JourneyVersion
from tests.browser import live_context
from tests.factories import PASSWORD

SHOTS = Path(os.environ.get("WAYFARER_SHOTS_DIR", "/work/wt/_notes/shots"))
expect.set_options(timeout=10_000)


def seed_sixty_days(tenant: Any) -> None:
    """Rollups of a shop that grows a little, is busier at weekends and had a quiet week."""
    rng = random.Random(15)
    today = selectors.today(tenant)
    metrics: list[DailyMetric] = []
    stages: list[StageSnapshot] = []
    for back in range(60):
        day = today - timedelta(days=back)
        weekend = 1.35 if day.weekday() >= 5 else 1.0
        growth = 1 + (60 - back) / 150
        dip = 0.6 if 20 <= back < 27 else 1.0
        visitors = int(420 * weekend * growth * dip * rng.uniform(0.9, 1.1))
        identified = int(visitors * rng.uniform(0.28, 0.36))
        new = int(visitors * rng.uniform(0.35, 0.45))
        checkouts = int(visitors * 0.06)
        orders = int(checkouts * rng.uniform(0.55, 0.7))
        first = int(orders * 0.6)
        sent = 0 if back % 7 else 1800
        sent += int(120 * rng.uniform(0.8, 1.2))  # journeys' messages every day
        delivered = int(sent * 0.97)
        responses = rng.randint(3, 14)
        promoters = int(responses * rng.uniform(0.4, 0.6))
        detractors = int((responses - promoters) * rng.uniform(0.2, 0.5))
        values = {
            "visitors": visitors,
            "identified_visitors": identified,
            "new_visitors": new,
            "returning_visitors": visitors - new,
            "events": visitors * 7,
            "page_views": visitors * 4,
            "checkouts": checkouts,
            "orders": orders,
            "buyers": orders - 1 if orders else 0,
            "revenue": Decimal(orders * rng.uniform(48, 72)).quantize(Decimal("0.01")),
            "first_orders": first,
            "repeat_orders": orders - first,
            "email_sent": sent,
            "email_delivered": delivered,
            "email_opened": int(delivered * rng.uniform(0.22, 0.3)),
            "email_clicked": int(delivered * rng.uniform(0.03, 0.05)),
            "email_unsubscribed": int(delivered * 0.002),
            "email_bounced": int(sent * 0.012),
            "push_sent": 150,
            "push_clicked": int(150 * rng.uniform(0.04, 0.08)),
            "push_subscribed": int(visitors * 0.01),
            "nps_responses": responses,
            "nps_promoters": promoters,
            "nps_detractors": detractors,
            "nps_passives": responses - promoters - detractors,
        }
        metrics += [
            DailyMetric(tenant=tenant, day=day, metric=k, value=v) for k, v in values.items()
        ]
        wave = math.sin(back / 9)
        counts = {
            "awareness": 900 - back * 2,
            "acquisition": 240 - back // 2,
            "onboarding": 31 + int(2 * wave),
            "engagement": 82 - back // 6,
            "retention": 15 + int(3 * wave) + back // 10,
            "advocacy": 9,
        }
        stages += [
            StageSnapshot(tenant=tenant, day=day, stage=s, contacts=n) for s, n in counts.items()
        ]
        if back == 0:  # today's contacts are the live count the home page shows
            Contact.objects.bulk_create(
                Contact(tenant=tenant, lifecycle_stage=stage)
                for stage, n in counts.items()
                for _ in range(n)
            )
    DailyMetric.objects.bulk_create(metrics)
    StageSnapshot.objects.bulk_create(stages)
    buyers = list(Contact.objects.filter(tenant=tenant)[:200])
    now = timezone.now()
    for name, per_day, value in (("Abandoned cart", 4, 58), ("Welcome series", 2, 35)):
        journey = Journey.objects.create(tenant=tenant, name=name, status=Journey.Status.LIVE)
        version = JourneyVersion.objects.create(
            tenant=tenant, journey=journey, number=1, state=JourneyVersion.State.PUBLISHED
        )
        Enrollment.objects.bulk_create(
            Enrollment(
                tenant=tenant,
                journey=journey,
                version=version,
                contact=rng.choice(buyers),
                node_key="goal",
                state=Enrollment.State.CONVERTED,
                converted_at=now - timedelta(days=back, hours=rng.randint(0, 5)),
                revenue=Decimal(value * rng.uniform(0.7, 1.3)).quantize(Decimal("0.01")),
            )
            for back in range(14)
            for _ in range(rng.randint(0, per_day))
        )


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    seed_sixty_days(world.acme)
    with live_context(browser, live_server.url) as context:
        yield context.new_page()


def watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    return problems


def sign_in(page: Page, live_server: Any, path: str) -> None:
    page.goto(path)
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{path}")


def fits(page: Page) -> None:
    """Nothing makes the page itself scroll sideways (tables scroll in their own box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def shoot(page: Page, name: str) -> None:
    """The whole page, and (a phone's page is long) its first screens one by one."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    size = page.viewport_size or {"width": 0, "height": 0}
    if size["width"] < 500:
        height = page.evaluate("document.documentElement.scrollHeight")
        for n, top in enumerate(range(0, min(height, size["height"] * 4), size["height"])):
            clip = {"x": 0, "y": top, "width": size["width"], "height": size["height"]}
            page.screenshot(path=str(SHOTS / f"{name}-{n + 1}.png"), full_page=True, clip=clip)


@pytest.mark.e2e
def test_the_home_dashboard_and_a_dashboard_page_render_cleanly(
    page: Page, live_server: Any
) -> None:
    problems = watch(page)
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, live_server, "/t/acme/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme")
    expect(page.locator("main")).to_contain_text("Times in UTC")
    week = page.get_by_role("list", name="This week's figures")
    expect(week.get_by_role("heading", name="Contacts")).to_be_visible()
    expect(week.get_by_role("img").first).to_have_attribute(
        "aria-labelledby", "spark-contacts-title spark-contacts-desc"
    )
    # The team has data: the checklist folds away under the figures.
    expect(page.locator("details#getting-started")).to_be_visible()
    fits(page)
    shoot(page, "dashboard-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    fits(page)
    shoot(page, "dashboard-390")

    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    expect(page).to_have_url(f"{live_server.url}/t/acme/analytics/traffic/")
    page.get_by_role("navigation", name="Analytics").get_by_role("link", name="Sales").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sales")
    page.get_by_label("Last 7 days").check()
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/t/acme/analytics/sales/\?range=7&"))
    expect(page.locator("#showing")).to_contain_text("(7 days)")
    chart = page.get_by_role("img", name="Revenue per day")
    expect(chart).to_be_visible()
    page.get_by_text("The numbers").first.click()
    expect(page.get_by_role("table").first).to_be_visible()
    fits(page)
    shoot(page, "sales-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    fits(page)
    shoot(page, "sales-390")

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/t/acme/analytics/retention/?range=90")
    expect(page.get_by_role("heading", level=1)).to_have_text("Retention")
    fits(page)
    shoot(page, "retention-1366")
    page.goto("/t/acme/analytics/nps/")
    expect(page.get_by_role("img", name="Net Promoter Score per day")).to_be_visible()
    shoot(page, "nps-1366")
    assert problems == []
