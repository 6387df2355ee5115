"""The recommendation report in a real Chromium against the live server: a viewer signs in,
finds the empty state, then the figures once recommendations were served, clicked and bought,
and switches the period. Screenshots at 1366 px and 390 px into WAYFARER_SCREENSHOTS_DIR (else
the test's temporary folder); no sideways scroll on a 390 px phone, no CSP violation or script
error."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import live_context
from tests.factories import PASSWORD

from .test_report import history

pytestmark = [pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
PATH = "/t/acme/personalisation/recommendations/"


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
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert errors == [], f"JavaScript errors or CSP violations: {errors}"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WAYFARER_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, out: Path, name: str) -> None:
    for width, height, suffix in ((1366, 900, ""), (390, 844, "-phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=out / f"recommendations-{name}{suffix}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)


def test_a_viewer_reads_the_report_on_a_desktop_and_a_phone(
    page: Page, world: Any, out: Path
) -> None:
    page.goto(PATH)
    page.get_by_label("Email").fill("bob@example.com")  # a viewer
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(PATH)))
    expect(page.get_by_text("No recommendations served in the last 30 days")).to_be_visible()
    shoot(page, out, "empty")

    history(world.acme)
    page.reload()
    table = page.get_by_role("table")
    expect(table.get_by_role("row")).to_have_count(3)  # the header, home, product-page
    expect(page.get_by_role("list", name="Totals")).to_contain_text("240.00 EUR")
    shoot(page, out, "data")

    page.get_by_role("link", name="90 days").click()
    expect(page).to_have_url(re.compile(r"days=90"))
    expect(page.get_by_role("list", name="Totals")).to_contain_text("390.00 EUR")
    expect(page.get_by_role("link", name="90 days")).to_have_attribute("aria-current", "page")
    shoot(page, out, "90-days")
