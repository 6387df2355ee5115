"""The hosted survey page and the marketer's pages in a real Chromium, at a laptop's width and
a phone's: nothing wider than the screen, no console errors or CSP refusals, and the hosted
page answered with JavaScript turned off (a keyboard-only pass for the scale too).
Screenshots go to WAYFARER_SHOTS_DIR (default /work/wt/_notes/shots) for a person to look at."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from personalisation.surveys.models import SurveyAnswer
from tests.browser import live_context
from tests.factories import PASSWORD
from tests.personalisation.surveys.conftest import page_url

SHOTS = Path(os.environ.get("WAYFARER_SHOTS_DIR", "/work/wt/_notes/shots"))
WIDTHS = {"desktop": 1366, "phone": 390}
expect.set_options(timeout=10_000)


def watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A form refused with its errors is answered 400 on purpose; Chromium logs every 4xx.
        if message.type in ("error", "warning") and "status of 400" not in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the screen"


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"surveys-{name}.png"), full_page=True)


def warm_up(live_server: Any) -> None:
    """The live server's first request imports every app's views (scikit-learn among them:
    seconds on this machine), longer than a page load may take."""
    urllib.request.urlopen(f"{live_server.url}/healthz", timeout=60).read()


@pytest.fixture
def no_js(browser: Browser, live_server: Any, transactional_db: None) -> Iterator[Page]:
    warm_up(live_server)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_hosted_page_answers_without_javascript_on_a_phone_and_a_laptop(
    no_js: Page, world: Any, nps: Any, delivery_factory: Any
) -> None:
    page = no_js
    problems = watch(page)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        delivery = delivery_factory()
        url = page_url(nps, delivery)
        page.goto(url + "?score=9")
        expect(page.get_by_role("radio", name="9", exact=True)).to_be_checked()
        scale = page.get_by_role("group", name="How likely are you to recommend Acme to a friend?")
        expect(scale.get_by_role("radio")).to_have_count(11)
        fits(page)
        shoot(page, f"hosted-nps-{label}")
        page.get_by_label("Why?").fill("Quick delivery and friendly support")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
        fits(page)
        shoot(page, f"hosted-thanks-{label}")
        page.goto(url)
        expect(page.get_by_role("heading", name="You have already answered")).to_be_visible()
        shoot(page, f"hosted-answered-{label}")
    assert list(SurveyAnswer.objects.values_list("score", flat=True)) == [9, 9]
    assert problems == []


def test_the_scale_is_keyboard_operable_and_errors_show(
    no_js: Page, world: Any, nps: Any, delivery_factory: Any
) -> None:
    page = no_js
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(page_url(nps, delivery_factory()))
    page.get_by_role("button", name="Send").click()  # no score chosen
    expect(page.get_by_text("Choose a score from 0 to 10.")).to_be_visible()
    shoot(page, "hosted-error-phone")
    page.get_by_role("radio", name="0", exact=True).focus()
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="7", exact=True)).to_be_checked()
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert SurveyAnswer.objects.get().score == 7


def test_a_short_survey_on_a_phone(
    no_js: Page, world: Any, short: Any, delivery_factory: Any
) -> None:
    page = no_js
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(page_url(short, delivery_factory()))
    page.get_by_role("radio", name="Friend").check()
    page.get_by_role("group", name="How easy was checkout?").get_by_role(
        "radio", name="4", exact=True
    ).check()
    page.get_by_label("Anything we should improve?").fill("More sizes")
    fits(page)
    shoot(page, "hosted-short-phone")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert SurveyAnswer.objects.get().answers == {"q1": "Friend", "q2": 4, "q3": "More sizes"}


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    warm_up(live_server)
    with live_context(browser, live_server.url) as context:
        yield context.new_page()


def sign_in(page: Page, live_server: Any, path: str) -> None:
    page.goto(path)
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{path}")


def test_the_marketer_pages_render_cleanly(
    page: Page, live_server: Any, world: Any, delivery_factory: Any, client: Any
) -> None:
    problems = watch(page)
    base = "/t/acme/personalisation/surveys/"
    sign_in(page, live_server, base)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(base)
        fits(page)
        shoot(page, f"list-empty-{label}")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(base + "new/")
    page.get_by_label("Name").fill("Customer NPS")
    page.get_by_label("Question", exact=True).first.fill("How likely are you to recommend us?")
    page.get_by_role("button", name="Create survey").click()
    expect(page.get_by_role("heading", name="Customer NPS")).to_be_visible()
    from personalisation.surveys.models import Survey

    survey = Survey.objects.get(tenant=world.acme)
    expect(page.locator("#no-answers")).to_be_visible()
    shoot(page, "results-empty-desktop")
    for n, score in enumerate((10, 9, 9, 8, 7, 6, 3, 10, 0)):
        delivery = delivery_factory(channel="push" if n % 3 == 0 else "email")
        client.post(
            page_url(survey, delivery),
            {
                "score": score,
                "comment": "Great" if score > 8 else ("Too slow" if score < 5 else ""),
            },
        )
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base}{survey.public_id}/")
        expect(page.locator("#nps-score")).to_have_text("11")  # (4 promoters - 3 detractors) / 9
        fits(page)
        shoot(page, f"results-{label}")
        page.goto(base)
        fits(page)
        shoot(page, f"list-{label}")
        page.goto(base + "new/")
        page.get_by_label("Name").fill("Checkout")
        page.get_by_role("button", name="Create survey").click()
        expect(page.get_by_text("This field is required.").first).to_be_visible()
        fits(page)
        shoot(page, f"form-errors-{label}")
    assert problems == []
