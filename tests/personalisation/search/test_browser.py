"""Personalisation → Search in a real Chromium at a laptop's width and a phone's: empty, with
data (queries, a try-it answer ranked for a contact, synonyms) and with a form error; nothing
wider than the screen, no console errors or CSP refusals. Screenshots go to WAYFARER_SHOTS_DIR
(default /work/wt/_notes/shots) for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from personalisation.search.services import search_run, synonyms_set
from tests.browser import live_context
from tests.factories import PASSWORD

SHOTS = Path(os.environ.get("WAYFARER_SHOTS_DIR", "/work/wt/_notes/shots"))
WIDTHS = {"desktop": 1366, "phone": 390}
PAGE = "/t/acme/personalisation/search/"
expect.set_options(timeout=30_000)


def watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{width}px wide"  # type: ignore[index]


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"search-{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url, timeout_ms=60_000) as context:
        yield context.new_page()


def sign_in(page: Page, live_server: Any) -> None:
    page.goto(PAGE)
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{PAGE}")


def test_the_search_page_empty_full_and_with_errors(
    page: Page, live_server: Any, shop: Any
) -> None:
    problems = watch(page)
    sign_in(page, live_server)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(PAGE)
        expect(page.get_by_text("No searches yet.").first).to_be_visible()
        fits(page)
        shoot(page, f"empty-{label}")

    for query in ["sneakers"] * 5 + ["rain jacket"] * 3 + ["umbrella"] * 2 + ["plimsolls"]:
        search_run(tenant=shop.acme, query=query, anonymous_id="v")
    synonyms_set(tenant=shop.acme, term="trainers", alternatives=["sneakers", "running shoes"])
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(PAGE)
        page.get_by_role("searchbox", name="Search for").fill("sneekers")
        page.get_by_label("As contact (email or user id)").fill("casual-cat")
        page.get_by_role("button", name="Search", exact=True).click()
        results = page.locator("#try-results tbody tr")
        expect(results).to_have_count(4)
        expect(results.first).to_contain_text("Canvas sneakers")
        expect(page.locator("#zero-queries")).to_contain_text("umbrella")
        fits(page)
        shoot(page, f"full-{label}")

    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(PAGE + "?term=umbrella#synonym-form")
        expect(page.get_by_label("When shoppers search for")).to_have_value("umbrella")
        page.get_by_role("button", name="Add synonym").click()
        expect(page.get_by_text("Enter at least one other word to search for.")).to_be_visible()
        expect(page.get_by_label("When shoppers search for")).to_have_value("umbrella")
        fits(page)
        shoot(page, f"error-{label}")
    assert problems == []
