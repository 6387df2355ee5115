"""The personas page in a real Chromium against the live server, with a real Celery worker
process (started as the Procfile starts it) running the clustering task: a marketer finds the
page empty, presses "Find personas", watches the run panel poll by itself (no reload) until the
worker's personas appear, and saves one as a segment.

Screenshots of every state (empty, running, results, saved) at 1366 px and 390 px, into the
folder WAYFARER_SCREENSHOTS_DIR names (else the test's temporary folder); no page scrolls
sideways on a 390 px phone, and no Content-Security-Policy violation or script error happens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from personalisation.personas.models import PersonaRun
from segments.models import Segment
from tests.browser import live_context
from tests.e2e.conftest import ProcessRunner, processes  # noqa: F401  (a fixture)
from tests.e2e.test_celery_worker import (  # noqa: F401  (celery_env is a fixture)
    celery_env,
    start_worker,
    wait_for_worker_ready,
)
from tests.factories import PASSWORD
from tests.personalisation.personas.conftest import plant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
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
    page.screenshot(path=out / f"personas-{name}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width} px wide on a phone"
        page.screenshot(path=out / f"personas-{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1366, "height": 900})


def test_a_marketer_finds_personas_run_by_the_worker_and_saves_one(
    page: Page,
    world: Any,
    processes: ProcessRunner,  # noqa: F811
    celery_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    out: Path,
) -> None:
    sign_in(page, "/t/acme/personalisation/personas/")
    expect(page.get_by_role("heading", name="No personas yet")).to_be_visible()
    shoot(page, out, "empty")

    plant(world.acme)
    page.get_by_label("How many personas").select_option(label="Auto (best of 3 to 6)")
    page.get_by_role("button", name="Find personas").click()
    # No worker yet: the run waits in the queue, and the panel says so and polls.
    expect(page.get_by_role("heading", name="Finding personas…")).to_be_visible()
    expect(page.get_by_role("button", name="Find personas")).to_be_disabled()
    page.evaluate("window.__samePage = true")
    shoot(page, out, "running")

    start_worker(processes, celery_env, tmp_path)
    wait_for_worker_ready(processes)
    expect(page.get_by_role("heading", name="3 personas among 120 contacts")).to_be_visible(
        timeout=90_000
    )
    assert page.evaluate("window.__samePage") is True, "the panel updated itself in place"
    expect(page.get_by_role("button", name="Find personas")).to_be_enabled()
    expect(
        page.get_by_role("heading", name="High-value, infrequent buyers of tents")
    ).to_be_visible()
    expect(
        page.get_by_role("heading", name="New visitors who browse footwear but never bought")
    ).to_be_visible()
    run = PersonaRun.objects.get(tenant=world.acme)
    assert run.status == PersonaRun.Status.DONE and run.k == 3
    # It stops asking once done.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if str(run.public_id) in r.url else None)
    page.wait_for_timeout(2_500)
    assert asked == []
    page.get_by_text("Segment rule").first.click()
    shoot(page, out, "results")

    tents = page.locator(".persona", has=page.get_by_role("heading", name=re.compile("tents")))
    tents.get_by_label("Segment name").fill("Tent lovers")
    tents.get_by_role("button", name="Save as segment").click()
    expect(page.get_by_text("Saved as the segment “Tent lovers”.")).to_be_visible()
    expect(tents.get_by_role("link", name="Tent lovers")).to_be_visible()
    segment = Segment.objects.get(tenant=world.acme, name="Tent lovers")
    assert segment.member_count >= 36
    shoot(page, out, "saved")


def test_a_team_with_too_few_contacts_reads_why(page: Page, world: Any, out: Path) -> None:
    from personalisation.personas import services

    run = services.persona_run_request(tenant=world.acme, user=None)
    services.persona_run_execute(tenant=world.acme, run=run)
    sign_in(page, "/t/acme/personalisation/personas/", email="bob@example.com")
    expect(page.get_by_role("heading", name="Not enough to group yet")).to_be_visible()
    expect(page.get_by_text("this team has 0")).to_be_visible()
    expect(page.get_by_role("button", name="Find personas")).to_have_count(0)
    shoot(page, out, "too-few")
