"""The template editor in a real Chromium against the live server: a marketer writes an email,
picks a contact to preview it with, watches the preview follow their typing, breaks the Liquid
and sees why, fixes it, saves, and sends a test that arrives at a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from audience.models import Contact
from messaging.models import Delivery, Template
from tests.browser import live_context
from tests.factories import PASSWORD
from tests.mail_sink import MailSink

NEW = "/t/acme/messages/templates/new/?channel=email"
expect.set_options(timeout=10_000)


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        yield context.new_page()


def settle(page: Page) -> None:
    """Wait until htmx has no request in flight (its debounce has fired and the swap is done)."""
    page.wait_for_function("!document.querySelector('.htmx-request')")


@pytest.mark.e2e
def test_it_previews_as_the_marketer_types_refuses_broken_liquid_saves_and_sends_a_test(
    page: Page, live_server: Any, world: Any, mail_sink: MailSink
) -> None:
    Contact.objects.create(
        tenant=world.acme, email="ann@example.com", first_name="Ann", last_name="Lee"
    )
    Contact.objects.create(tenant=world.globex, email="ann@globex.example", first_name="Anouk")
    page.goto(NEW)
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{NEW}")
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))

    # Choose the contact to preview with: only acme's Ann is found.
    page.get_by_label("Find a contact").fill("an")
    choice = page.get_by_label("Ann Lee <ann@example.com>")
    expect(choice).to_be_visible()
    expect(page.get_by_text("Anouk")).to_have_count(0)
    choice.check()
    expect(page.locator("#preview-contact")).to_have_text("As Ann Lee <ann@example.com>")

    page.get_by_label("Name").fill("Welcome")
    page.get_by_label("Subject").fill("Hello {{ contact.first_name }}")
    page.get_by_label("HTML").fill("<p>Hi {{ contact.first_name }}, welcome aboard.</p>")
    expect(page.locator("#preview-subject")).to_have_text("Hello Ann")
    email = page.frame_locator("iframe.email-frame")
    expect(email.locator("p")).to_have_text("Hi Ann, welcome aboard.")

    # Broken Liquid: the preview and the field both say what is wrong.
    subject = page.get_by_label("Subject")
    subject.fill("Hello {{ contact.first_name ")
    expect(page.locator("#preview-errors")).to_contain_text("subject")
    expect(page.locator("#errors-subject")).to_contain_text("subject")
    expect(page.locator("#errors-html")).to_be_empty()
    subject.press("End")
    subject.type("}}")
    expect(page.locator("#preview-subject")).to_have_text("Hello Ann")
    expect(page.locator("#errors-subject")).to_be_empty()
    expect(page.locator("#preview-errors")).to_have_count(0)
    settle(page)
    assert loads == []  # every change came back through htmx, not a page load

    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("Saved “Welcome”.")).to_be_visible()
    template = Template.objects.get(tenant=world.acme, name="Welcome")
    assert page.url == f"{live_server.url}/t/acme/messages/templates/{template.public_id}/"
    assert template.subject == "Hello {{ contact.first_name }}"

    # Send a test to a colleague chosen from the team, rendered for the contact chosen again.
    page.get_by_label("Find a contact").fill("ann@")
    page.get_by_label("Ann Lee <ann@example.com>").check()
    expect(page.locator("#preview-subject")).to_have_text("Hello Ann")
    expect(page.get_by_label("Send to")).to_have_value("dave@example.com")
    page.get_by_label("Send to").select_option("alice@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#send-result")).to_contain_text(
        "Sent a test “Hello Ann” to alice@example.com"
    )
    [received] = mail_sink.wait_for(1)
    assert received.rcpt_tos == ["alice@example.com"]
    assert received.message["Subject"] == "[Test] Hello Ann"
    assert re.search(
        r"Hi Ann, welcome aboard\.", received.message.get_body(("html",)).get_content()
    )
    assert not Delivery.objects.exists()
