"""Campaigns in a real Chromium against the live server. A marketer starts from a segment's page
("Send a campaign to this segment"), sees the live recipient count change as they exclude a
segment, chooses the email, saves with a throttle and presses "Send now"; the send page's
progress bar then fills by itself (htmx polling, no reload) to 100 % while a worker thread does
what the beat and the sender do; the results page opens with its charts.

Screenshots of every page, empty and full and with errors, at 1366 px and 390 px (into
docs/screenshots/ with WAYFARER_SCREENSHOTS_TO_DOCS=1, else the test's temporary folder), and no
page scrolls sideways on a 390 px phone.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from audience.models import Event
from campaigns import dispatch, services
from campaigns.models import Campaign, Recipient
from messaging import outbox, outcomes
from messaging.models import Channel, Delivery
from tests.browser import live_context
from tests.campaigns.conftest import email_template, people, segment_of
from tests.factories import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
expect.set_options(timeout=15_000)
pytestmark = pytest.mark.e2e


# Every violation is reported to the test as it happens (a page's own list would be lost on
# the next navigation).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


class Worker(threading.Thread):
    """The beat's tick and the email sender, in a loop, as the Celery worker would run them."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                dispatch.tick(seconds=0.5)
                outbox.deliveries_send(channel=Channel.EMAIL, seconds=0.5)
                self.stop.wait(0.3)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connection.close()


@pytest.fixture
def worker(transactional_db: None) -> Iterator[Worker]:
    thread = Worker()
    thread.start()
    yield thread
    thread.stop.set()
    thread.join(timeout=20)
    close_old_connections()
    assert thread.errors == []


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        # Every page keeps the Content-Security-Policy (no inline script or style it refuses).
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
    folder = SCREENSHOTS if os.environ.get("WAYFARER_SCREENSHOTS_TO_DOCS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, path: str, email: str = "dave@example.com") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path.split("?")[0])))


def shoot(page: Page, out: Path, name: str) -> None:
    """The page at 1366 px and on a 390 px phone, where it must not scroll sideways."""
    page.screenshot(path=out / f"{name}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width} px wide on a phone"
        page.screenshot(path=out / f"{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1366, "height": 900})


def test_it_sends_a_campaign_from_a_segment_and_watches_it_go(
    page: Page, world: Any, worker: Worker, out: Path
) -> None:
    readers = people(world.acme, 30, prefix="reader")
    newsletter = segment_of(world.acme, readers, name="Newsletter")
    segment_of(world.acme, readers[:4], name="Already bought")
    email_template(world.acme, name="Winter sale", subject="Hi {{ contact.first_name }}")

    sign_in(page, f"/t/acme/segments/{newsletter.public_id}/")
    shoot(page, out, "segment-send-campaign")
    page.get_by_role("link", name="Send a campaign to this segment").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("To Newsletter")
    expect(page.locator("#audience-reachable")).to_have_text("30")

    # Excluding the buyers counts again at once, without leaving the page.
    page.evaluate("window.__samePage = true")
    page.get_by_role("group", name="But not to").get_by_label(re.compile("Already bought")).check()
    expect(page.locator("#audience-reachable")).to_have_text("26")
    page.get_by_label("Template").select_option(label="Winter sale")
    page.get_by_label("At most (messages a minute)").fill("300")
    page.get_by_label("Conversion event").fill("Order Completed")
    page.get_by_role("button", name="Save campaign").click()

    expect(page.get_by_role("heading", name="To Newsletter")).to_be_visible()
    campaign = Campaign.objects.get(tenant=world.acme, name="To Newsletter")
    assert campaign.throttle_per_minute == 300
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("“To Newsletter” is on its way.")).to_be_visible()

    # The bar fills by itself: the page is never reloaded, and it ends at 100 %.
    page.evaluate("window.__samePage = true")
    expect(page.locator("#progress-percent")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.screenshot(path=out / "campaign-sending.png", full_page=True)
    expect(page.locator("#progress-percent")).to_have_text("100 %", timeout=60_000)
    assert page.evaluate("window.__samePage") is True
    expect(page.locator('[data-count="sent"]')).to_have_text("26")
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    expect(page.locator("#campaign-head .campaign-state")).to_have_text("Sent")
    # It stops asking once done.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/progress/" in r.url else None)
    page.wait_for_timeout(2_500)
    assert asked == []
    shoot(page, out, "campaign-sent")

    page.get_by_role("link", name="Results").click()
    expect(page.get_by_role("heading", name="Results: To Newsletter")).to_be_visible()
    expect(page.locator("#kpis")).to_contain_text("26 delivered")
    expect(page.locator("svg.bar-chart")).to_be_visible()


def test_it_shows_errors_beside_the_fields_without_saving(
    page: Page, world: Any, out: Path
) -> None:
    segment_of(world.acme, people(world.acme, 3), name="Newsletter")
    email_template(world.acme, name="Winter sale")
    sign_in(page, "/t/acme/campaigns/")
    expect(page.get_by_role("heading", name="Send one message to a whole audience")).to_be_visible()
    shoot(page, out, "campaign-list-empty")

    page.get_by_role("link", name="Create your first campaign").click()
    expect(page.locator("#audience-empty")).to_be_visible()
    shoot(page, out, "campaign-new")
    # Web push: the templates offered follow the channel (there are none of that kind yet).
    page.get_by_label("Channel").select_option(label="Web push")
    expect(page.get_by_text("You have no web push templates yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Create one")).to_have_attribute(
        "href", "/t/acme/messages/templates/new/?channel=push"
    )
    page.get_by_label("Channel").select_option(label="Email")
    expect(page.get_by_label("Template")).to_contain_text("Winter sale")
    page.get_by_label("At a date and time").check()
    expect(page.get_by_text("In your team's time zone, UTC.")).to_be_visible()
    page.get_by_role("button", name="+ Add a variant (A/B test)").click()
    expect(page.get_by_label("Variant B", exact=True)).to_be_focused()  # keyboard goes on there
    expect(page.get_by_role("group", name="A/B test")).to_be_visible()
    page.evaluate("window.__samePage = true")
    page.get_by_role("button", name="Save campaign").click()
    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    assert page.evaluate("window.__samePage") is True  # answered in place (htmx)
    # Each problem beside its field, and listed on top with a link to it.
    expect(
        page.locator(".field .errorlist", has_text="Choose at least one segment")
    ).to_be_visible()
    expect(page.locator(".field .errorlist", has_text="Choose the date and time")).to_be_visible()
    page.locator(".problem-list").get_by_role("link", name="Name").click()
    expect(page.get_by_label("Name")).to_be_focused()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    assert Campaign.objects.count() == 0
    shoot(page, out, "campaign-form-errors")


def test_it_takes_the_screenshots_of_a_full_campaign(page: Page, world: Any, out: Path) -> None:
    """An A/B test (half the audience, the winner by opens to the rest) with a hold-out, with
    opens, clicks and orders: the list, the page while testing and when sent, the preview and
    the results."""
    readers = people(world.acme, 60, prefix="r")
    segment = segment_of(world.acme, readers, name="Newsletter")
    a = email_template(
        world.acme, name="Winter sale: 20 % off", subject="20 % off, {{ contact.first_name }}"
    )
    b = email_template(world.acme, name="Winter sale: free shipping", subject="Free shipping")
    campaign = services.campaign_create(
        tenant=world.acme,
        name="Winter sale",
        segments=[segment],
        variants=[(a, 50), (b, 50)],
        holdout_percent=10,
        test_percent=50,
        winner_metric="opens",
        goal_event="Order Completed",
    )
    services.campaign_schedule(campaign=campaign)
    campaign.refresh_from_db()
    occurrence = dispatch.campaign_start_due(campaign=campaign)
    assert occurrence is not None
    dispatch.occurrence_release(occurrence=occurrence)
    outbox.deliveries_send(channel=Channel.EMAIL, seconds=5)
    seed_outcomes(world, occurrence)
    services.campaign_create(
        tenant=world.acme,
        name="Weekly digest",
        segments=[segment],
        variants=[(a, 100)],
        schedule="recurring",
        cron_minute="0",
        cron_hour="9",
        cron_day_of_week="1",
        cron_day_of_month="*",
        cron_month_of_year="*",
    )

    # The test group is out; the rest wait for the winner.
    sign_in(page, f"/t/acme/campaigns/{campaign.public_id}/")
    expect(page.get_by_role("heading", name="Testing the variants")).to_be_visible()
    shoot(page, out, "campaign-testing")
    # Five hours on (the winner is due after four): the winner goes to the rest.
    with time_machine.travel(timezone.now() + timedelta(hours=5), tick=True):
        winner = dispatch.occurrence_winner_decide(occurrence=occurrence)
        assert winner is not None and winner.key == "A"  # every A was opened, a third of B not
        dispatch.occurrence_release(occurrence=occurrence)
        outbox.deliveries_send(channel=Channel.EMAIL, seconds=5)
        dispatch.occurrence_finish_if_done(occurrence=occurrence)
        seed_outcomes(world, occurrence)

        page.goto("/t/acme/campaigns/")
        expect(page.get_by_role("link", name="Winter sale")).to_be_visible()
        shoot(page, out, "campaign-list")

        page.get_by_role("link", name="Winter sale").click()
        expect(page.locator("#progress-percent")).to_have_text("100 %")
        expect(page.locator("#progress")).to_contain_text("winner: Variant A")
        shoot(page, out, "campaign-detail")

        page.get_by_role("link", name="Preview").click()
        page.get_by_label("Contact's email or name").fill(readers[0].email[:8])
        page.get_by_role("button", name="Find").click()
        page.get_by_role("link", name=readers[0].email).click()
        expect(page.locator("#preview-subject")).to_have_text(f"20 % off, {readers[0].first_name}")
        expect(page.locator("#preview-verdict")).to_contain_text("they would get it")
        shoot(page, out, "campaign-preview")

        page.goto(f"/t/acme/campaigns/{campaign.public_id}/results/")
        expect(page.locator("#results-table")).to_contain_text("Hold-out")
        expect(page.locator("#results-table .winner-row")).to_contain_text("Variant A")
        expect(page.locator("svg.line-chart")).to_be_visible()
        expect(page.locator("#links-table")).to_contain_text("https://shop.example/sale")
        shoot(page, out, "campaign-results")

        page.goto(f"/t/acme/campaigns/{campaign.public_id}/edit/")
        shoot(page, out, "campaign-edit-sent")  # refused: back on the page with the reason

        digest = Campaign.objects.get(name="Weekly digest")
        page.goto(f"/t/acme/campaigns/{digest.public_id}/edit/")
        expect(page.get_by_label("Repeats")).to_have_value("weekly")
        shoot(page, out, "campaign-edit-recurring")


def seed_outcomes(world: Any, occurrence: Any) -> None:
    """Outcomes for the recipients sent so far and not seeded yet: every A opened, two in three
    B, a click in four (on two links), an order in five."""
    seeded = set(
        Event.objects.filter(name=outcomes.EMAIL_OPENED).values_list("contact_id", flat=True)
    )
    recipients = list(
        Recipient.objects.filter(occurrence=occurrence, holdout=False, delivery__status="sent")
        .exclude(contact_id__in=seeded)
        .select_related("delivery", "variant")
        .order_by("pk")
    )
    for i, r in enumerate(recipients):
        sent_at = r.delivery.sent_at
        if i % 3 != 2 or r.variant.key == "A":
            event(r, outcomes.EMAIL_OPENED, sent_at + timedelta(minutes=5 + i))
        if i % 4 == 0:
            url = "https://shop.example/sale" if i % 8 else "https://shop.example/boots"
            event(r, outcomes.EMAIL_CLICKED, sent_at + timedelta(minutes=9 + i), url=url)
        if i % 5 == 0:
            Event.objects.create(
                tenant=world.acme,
                contact_id=r.contact_id,
                name="Order Completed",
                properties={"revenue": 40 + i},
                occurred_at=sent_at + timedelta(minutes=30 + i),
                message_id=str(uuid.uuid4()),
                source="api",
            )


def test_it_pauses_resumes_and_cancels_from_the_send_page(
    page: Page, world: Any, worker: Worker, out: Path
) -> None:
    readers = people(world.acme, 40, prefix="slow")
    campaign = services.campaign_create(
        tenant=world.acme,
        name="Slow drip",
        segments=[segment_of(world.acme, readers, name="Everyone")],
        variants=[(email_template(world.acme, name="Drip"), 100)],
        throttle_per_minute=20,  # one every 3 s: still going when the buttons are pressed
    )
    sign_in(page, f"/t/acme/campaigns/{campaign.public_id}/")
    page.get_by_role("button", name="Send now").click()
    expect(page.locator('[data-count="sent"]')).not_to_have_text("0", timeout=30_000)

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused “Slow drip”")).to_be_visible()
    expect(page.locator("#campaign-head .campaign-state")).to_have_text("Paused")
    shoot(page, out, "campaign-paused")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#campaign-head .campaign-state")).to_have_text("Sending")

    # Cancel asks first: dismissing keeps it going, accepting stops it.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel sending").click()
    expect(page.locator("#campaign-head .campaign-state")).to_have_text("Sending")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel sending").click()
    expect(page.get_by_text("Cancelled “Slow drip”")).to_be_visible()
    expect(page.locator("#campaign-head .campaign-state")).to_have_text("Cancelled")
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    sent = Delivery.objects.filter(source=f"campaign:{campaign.public_id}", status="sent").count()
    assert 0 < sent < 40


def event(recipient: Recipient, name: str, at: Any, **properties: Any) -> None:
    """An outcome about the recipient's own message, as messaging records it."""
    delivery = recipient.delivery
    assert delivery is not None
    Event.objects.create(
        tenant_id=recipient.tenant_id,
        contact_id=recipient.contact_id,
        name=name,
        properties={
            "delivery_id": str(delivery.public_id),
            "source": delivery.source,
            **properties,
        },
        occurred_at=at,
        message_id=str(uuid.uuid4()),
        source="messaging",
    )
