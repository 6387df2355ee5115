"""Onsite content in a real Chromium against the live server: a marketer finds the page empty,
creates a placement (a mistake first: the form says what is wrong and keeps the input), adds a
default and a targeted variant whose preview follows the typing (htmx, no reload), moves the
targeted one above the default, and reads each variant's figures.

Screenshots of every state (empty, form error, variant form with preview, full list, detail) at
1366 px and 390 px, into the folder WAYFARER_SCREENSHOTS_DIR names (else the test's temporary
folder); no page scrolls sideways on a 390 px phone, and no Content-Security-Policy violation or
script error happens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils.timezone import now
from playwright.sync_api import Browser, Page, expect

from audience.inbox import inbox_accept, inbox_drain
from audience.segment_spec import parse_call
from personalisation.placements.models import Placement
from segments.services import segment_create
from tests.browser import live_context
from tests.factories import PASSWORD
from tests.personalisation.placements.conftest import outdoor_rules

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=15_000)

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def page(browser: Browser, live_server: Any, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url, timeout_ms=30_000) as context:
        errors: list[str] = []
        context.expose_binding(
            "reportCspViolation",
            lambda source, text: errors.append(f"{source['frame'].url}: {text}"),
        )
        context.add_init_script(REPORT_VIOLATIONS)
        page = context.new_page()
        page.set_viewport_size({"width": 1366, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert errors == [], f"JavaScript errors or CSP violations: {errors}"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WAYFARER_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, path: str, email: str = "dave@example.com") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path)))


def shoot(page: Page, out: Path, name: str) -> None:
    """The page at 1366 px and on a 390 px phone, where it must not scroll sideways."""
    page.screenshot(path=out / f"placements-{name}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width} px wide on a phone"
        page.screenshot(path=out / f"placements-{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1366, "height": 900})


def figures(tenant: Any, placement: Placement) -> None:
    """What the tracker would have sent: views and clicks of each variant."""
    calls = []
    for variant, views, clicks in zip(
        placement.variants.order_by("position"), (40, 120), (6, 3), strict=True
    ):
        for name, count in (("Placement Viewed", views), ("Placement Clicked", clicks)):
            for n in range(count):
                calls.append(
                    {
                        "type": "track",
                        "event": name,
                        "messageId": f"{variant.pk}-{name}-{n}",
                        "anonymousId": f"visitor-{n}",
                        "timestamp": (now() - timedelta(hours=n)).isoformat(),
                        "properties": {
                            "placement": placement.key,
                            "variant": str(variant.public_id),
                            "variant_name": variant.name,
                        },
                    }
                )
    inbox_accept(tenant=tenant, calls=[parse_call(c) for c in calls], source="http")
    inbox_drain()


def test_a_marketer_builds_a_banner_with_a_targeted_variant(
    page: Page, world: Any, out: Path
) -> None:
    segment_create(tenant=world.acme, name="Outdoor lovers", rules=outdoor_rules())
    sign_in(page, "/t/acme/personalisation/placements/")
    expect(page.get_by_text("No placements yet.")).to_be_visible()
    shoot(page, out, "empty")

    page.get_by_role("link", name="New placement").click()
    page.get_by_label("Key").fill("Home Banner")
    page.get_by_label("Name").fill("Home page banner")
    page.get_by_role("button", name="Create placement").click()
    expect(page.get_by_text("Use 1 to 64 lowercase letters")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Home page banner")
    shoot(page, out, "placement-form-error")
    page.get_by_label("Key").fill("home-banner")
    page.get_by_role("button", name="Create placement").click()
    expect(page.get_by_role("heading", name=re.compile("Home page banner"))).to_be_visible()

    page.get_by_role("link", name="Add variant").click()
    page.get_by_label("Name").fill("Everyone")
    page.get_by_label("Title").fill("New season, new trails")
    page.get_by_label("Link URL").fill("/shop/")
    page.get_by_label("Link text").fill("Shop now")
    page.get_by_role("button", name="Add variant").click()
    expect(page.get_by_text("The variant “Everyone” is added.")).to_be_visible()

    page.get_by_role("link", name="Add variant").click()
    page.evaluate("window.__samePage = true")
    page.get_by_label("Name").fill("Outdoor")
    page.get_by_label("Title").fill("Tents from 89 €")
    page.get_by_label("Body").fill("For your next night under the stars.")
    page.get_by_label("Image URL").fill("javascript:alert(1)")
    preview = page.locator("#variant-preview")
    expect(preview).to_contain_text("Tents from 89 €")  # the preview follows the typing
    expect(preview).to_contain_text("For your next night under the stars.")
    assert page.evaluate("window.__samePage") is True
    page.get_by_label("Segment").select_option(label="Outdoor lovers")
    page.get_by_role("button", name="Add variant").click()
    expect(page.get_by_text("Enter an https:// (or http://) address")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Tents from 89 €")
    shoot(page, out, "variant-form-error")
    page.get_by_label("Image URL").fill("")
    page.get_by_label("Link URL").fill("/shop/outdoor/")
    page.get_by_label("Link text").fill("See tents")
    shoot(page, out, "variant-form")
    page.get_by_role("button", name="Add variant").click()
    expect(page.get_by_text("The variant “Outdoor” is added.")).to_be_visible()

    # Second, so below the default: moved up, it is tried first.
    page.get_by_role("button", name="Move Outdoor up").click()
    cards = page.locator(".variant-card h3")
    expect(cards).to_have_text(["Outdoor", "Everyone"])

    placement = Placement.objects.get(tenant=world.acme, key="home-banner")
    figures(world.acme, placement)
    page.reload()
    outdoor = page.locator(".variant-card").filter(has_text="Outdoor lovers")
    expect(outdoor.locator(".variant-figures")).to_contain_text("40")
    expect(outdoor.locator(".variant-figures")).to_contain_text("15.0%")
    shoot(page, out, "detail")

    page.get_by_role("button", name="Deactivate").first.click()
    expect(page.get_by_text("“Outdoor” is inactive: it is never shown.")).to_be_visible()

    page.get_by_role("link", name="Onsite content").first.click()
    row = page.locator("tr").filter(has_text="Everyone")
    expect(row).to_contain_text("120")
    expect(row).to_contain_text("2.5%")
    shoot(page, out, "list")


def test_a_viewer_reads_the_figures_without_controls(page: Page, world: Any, out: Path) -> None:
    from personalisation.placements.services import placement_create, variant_create

    placement = placement_create(tenant=world.acme, key="home-banner", name="Home page banner")
    variant_create(tenant=world.acme, placement=placement, name="Everyone", title="Hello")
    sign_in(page, f"/t/acme/personalisation/placements/{placement.public_id}/", "bob@example.com")
    expect(page.get_by_text("Hello")).to_be_visible()
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    expect(page.get_by_role("link", name="Add variant")).to_have_count(0)
    shoot(page, out, "detail-viewer")
