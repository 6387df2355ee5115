"""The whole loop, from the editor to an inbox: a marketer builds the cart-abandonment journey by
mouse and publishes it; the shop sends "Product Added" through the tracking API (/v1/track with a
write key); the engine advances the enrollment when the 30 minutes are up (`advance_due` with a
`now` past them, as the beat's tick would); the outbox sends the email, and a real SMTP server
receives it with the cart's products. Then the marketer shortens the 24-hour wait and republishes
with the contact waiting there: the contact moves to v2 (a "moved" step) and the new wait applies,
counted from when they arrived."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from audience.models import Contact
from journeys import engine
from journeys.models import Enrollment, JourneyVersion, Step
from messaging import outbox
from messaging.models import Channel, Delivery, Template
from tests.browser import live_context
from tests.factories import api_key
from tests.journeys.test_editor_browser import (
    build_cart_journey_by_mouse,
    card,
    panel,
    save_step,
    sign_in,
)
from tests.mail_sink import MailSink

pytestmark = pytest.mark.e2e
expect.set_options(timeout=10_000)


@pytest.fixture
def mail_sink(settings: Any) -> Iterator[MailSink]:
    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        yield sink


@pytest.fixture
def page(
    browser: Browser, live_server: Any, transactional_db: None, world: Any, ingest_inline: None
) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1366, "height": 900})
        yield page


def track(base: str, key: str, door: str = "track", **message: Any) -> None:
    """A call to the tracking API (Segment's HTTP spec) with the team's write key."""
    response = requests.post(f"{base}/v1/{door}", json=message, auth=(key, ""), timeout=10)
    assert response.json() == {"success": True}, response.text


def test_it_emails_the_cart_and_moves_waiting_people_to_a_republished_wait(
    page: Page, live_server: Any, world: Any, mail_sink: MailSink
) -> None:
    Template.objects.create(
        tenant=world.acme,
        name="Your cart",
        channel=Channel.EMAIL,
        subject="You left something in your cart",
        html="<p>Still yours:</p><ul>{% for item in cart.items %}<li>{{ item.name }}</li>"
        "{% endfor %}</ul>",
    )
    Template.objects.create(
        tenant=world.acme,
        name="Cart reminder",
        channel=Channel.PUSH,
        subject="Still thinking it over?",
        html="Your cart is waiting",
    )
    sign_in(page, "/t/acme/journeys/")
    journey = build_cart_journey_by_mouse(page, world)
    page.get_by_role("link", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish v1").click()
    expect(page.locator("#journey-status")).to_have_text("Live")

    # The shop: who the visitor is, then two products into cart c-1.
    key = api_key(world.acme, kind="write")[1]
    base = live_server.url
    track(base, key, "identify", userId="ann", messageId="id-1",
          traits={"email": "ann@example.com", "firstName": "Ann"})  # fmt: skip
    Contact.objects.filter(tenant=world.acme, email="ann@example.com").update(
        email_consent="granted"
    )
    for n, (sku, name, price) in enumerate(
        [("tent-2p", "Ridge tent for two", 249), ("lamp-1", "Camp lantern", 29)]
    ):
        track(base, key, userId="ann", event="Product Added", messageId=f"add-{n}",
              properties={"cart_id": "c-1", "sku": sku, "name": name, "price": price})  # fmt: skip
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == "waiting"  # for Order Completed on cart c-1, 30 minutes at most
    entered = enrollment.arrived_at

    # 31 minutes on, no order: the timeout port leads to the email.
    engine.advance_due(now=entered + timedelta(minutes=31))
    delivery = Delivery.objects.get(source=f"journey:{journey.public_id}")
    outbox.deliveries_send(channel=Channel.EMAIL, seconds=10)
    [received] = mail_sink.wait_for(1)
    message = received.message
    assert received.rcpt_tos == ["ann@example.com"]
    assert message["Subject"] == "You left something in your cart"
    html = message.get_body(("html",)).get_content()
    assert "Ridge tent for two" in html and "Camp lantern" in html
    delivery.refresh_from_db()
    assert delivery.status == "sent"

    enrollment.refresh_from_db()
    wait_key = enrollment.node_key
    assert enrollment.state in ("active", "waiting")  # at the 24-hour wait
    arrived = enrollment.arrived_at

    # The counts show her there; then the marketer shortens the wait to 2 hours.
    page.reload()
    wait_card = card(page, "Wait")
    expect(wait_card.locator(".count-waiting b")).to_have_text("1")
    wait_card.locator("[data-open-settings]").click()
    panel(page).get_by_label("Wait", exact=True).fill("2")
    save_step(page)
    expect(page.locator("#version-note")).to_contain_text("Editing the draft of v2 · Live: v1")
    page.get_by_role("link", name="Publish…").click()
    dialog = page.locator("#publish-dialog")
    expect(dialog).to_contain_text("1 person is in v1 now")
    dialog.get_by_label(re.compile("Move them to v2")).check()
    dialog.get_by_role("button", name="Publish v2").click()
    expect(page.locator("#version-note")).to_contain_text("Live: v2")

    enrollment.refresh_from_db()
    assert enrollment.version.number == 2
    moved = Step.objects.get(enrollment=enrollment, result="moved")
    assert (moved.node_key, moved.detail) == (wait_key, {"from": 1, "to": 2})
    # The new wait counts from when she arrived: nothing at 1 hour, on at 2 hours.
    engine.advance_due(now=timezone.now())  # the move made her due now: she waits again
    engine.advance_due(now=arrived + timedelta(hours=1))
    enrollment.refresh_from_db()
    assert enrollment.node_key == wait_key
    engine.advance_due(now=arrived + timedelta(hours=2, minutes=1))
    enrollment.refresh_from_db()
    assert enrollment.node_key != wait_key or enrollment.state not in ("active", "waiting")
    assert JourneyVersion.objects.get(journey=journey, state="published").number == 2
