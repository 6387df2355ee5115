"""The segment builder in a real Chromium against the live server: a marketer builds a segment
with a nested group, and the live count follows every change without a page load.

acme's five contacts, and who matches what:

    ann  ann@example.com  Order Completed, twice
    ben  ben@gmail.com    Product Viewed
    cat  cat@gmail.com    Order Completed
    dan  dan@example.com  Product Viewed
    eve  eve@gmail.com    (nothing)

    all of: (any of: did Order Completed; did Product Viewed); email contains gmail
            └ ann, cat ┘ └ + ben, dan = 4 ┘                      └ ben, cat, eve ┘  → ben, cat
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from audience.segment_spec import parse_call
from audience.services import calls_record
from segments.models import Segment
from tests.browser import live_context
from tests.factories import PASSWORD

NEW = "/t/acme/segments/new/"
expect.set_options(timeout=10_000)


def send(tenant: Any, *messages: dict[str, Any]) -> None:
    calls_record(tenant=tenant, calls=[parse_call(m) for m in messages])


@pytest.fixture
def contacts(world: Any) -> Any:
    for name, domain in [
        ("ann", "example.com"),
        ("ben", "gmail.com"),
        ("cat", "gmail.com"),
        ("dan", "example.com"),
        ("eve", "gmail.com"),
    ]:
        traits = {"email": f"{name}@{domain}", "firstName": name.title()}
        send(world.acme, {"type": "identify", "userId": name, "messageId": name, "traits": traits})
    for n, (user_id, event) in enumerate(
        [
            ("ann", "Order Completed"),
            ("ann", "Order Completed"),
            ("ben", "Product Viewed"),
            ("cat", "Order Completed"),
            ("dan", "Product Viewed"),
        ]
    ):
        send(world.acme, {"type": "track", "userId": user_id, "event": event, "messageId": str(n)})
    # Another team's buyer on gmail never counts.
    send(world.globex, {"type": "identify", "userId": "zed", "traits": {"email": "zed@gmail.com"}})
    send(world.globex, {"type": "track", "userId": "zed", "event": "Order Completed"})
    return world


@pytest.fixture
def page(
    browser: Browser, live_server: Any, transactional_db: None, contacts: Any
) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        yield context.new_page()


def condition(scope: Page | Locator, number: str) -> Locator:
    """A condition's fieldset, by its legend ("Condition 1.2 · …")."""
    return scope.get_by_role("group", name=re.compile(rf"^Condition {re.escape(number)}\b"))


def add_condition(group: Locator, kind: str) -> None:
    # The group's own controls (not those of a group nested in it) are its last ones.
    group.get_by_label("New condition").last.select_option(label=kind)
    group.get_by_role("button", name=re.compile(r"^Add condition")).last.click()


@pytest.mark.e2e
def test_it_builds_a_segment_with_a_live_count_at_every_step(
    page: Page, live_server: Any, contacts: Any
) -> None:
    page.goto(NEW)
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{NEW}")
    count = page.locator("#match-count")
    expect(count).to_have_text("5 contacts match")  # no conditions yet: everyone of acme's
    loads = []
    page.on("load", lambda _: loads.append(page.url))

    root = page.get_by_role("group", name="Contacts who match")
    page.get_by_label("Name").fill("Engaged on gmail")
    root.get_by_role("button", name="Add group").last.focus()
    page.keyboard.press("Enter")  # the builder works from the keyboard
    group = page.get_by_role("group", name="Group 1")
    # Inside "all", a new group starts as "any".
    expect(group.get_by_label("Match", exact=True)).to_have_value("any")
    expect(count).to_contain_text("Finish the conditions")
    expect(group.locator(".errorlist")).to_contain_text("empty group")

    add_condition(group, "Did an event")
    first = condition(page, "1.1")
    expect(first.get_by_label("Event")).to_be_focused()  # keyboard users land in the new row
    first.get_by_label("Event").fill("Order Completed")
    first.get_by_label("Event").press("Tab")
    expect(count).to_have_text("2 contacts match")  # ann, cat

    add_condition(group, "Did an event")
    second = condition(page, "1.2")
    expect(count).to_contain_text("Finish the conditions")
    expect(second.locator(".errorlist")).to_have_text("Event must be text of 1 to 200 characters.")
    second.get_by_label("Event").fill("Product Viewed")
    second.get_by_label("Event").press("Tab")
    expect(count).to_have_text("4 contacts match")  # + ben, dan

    add_condition(root, "Profile field")
    email = condition(page, "2")
    email.get_by_label("Field").select_option(label="Email")
    email.get_by_label("Comparison").select_option(label="contains")
    email.get_by_label("Value").fill("gmail")
    # Enter in a text box updates the count (it does not press the first Remove button).
    email.get_by_label("Value").press("Enter")
    expect(count).to_have_text("2 contacts match")  # ben, cat
    expect(condition(page, "1.1")).to_be_visible()
    expect(page.locator("#segment-summary")).to_have_text(
        "all of: (any of: did “Order Completed”; did “Product Viewed”); email contains gmail"
    )
    sample = page.locator(".sample")
    expect(sample.get_by_role("link")).to_have_count(2)
    expect(sample).to_contain_text("Ben")
    expect(sample).to_contain_text("Cat")

    # Removing the first event condition leaves "any of: did Product Viewed": ben only.
    first.get_by_role("button", name="Remove condition 1.1").click()
    expect(count).to_have_text("1 contact matches")
    expect(condition(page, "1.1").get_by_label("Event")).to_have_value("Product Viewed")
    expect(condition(page, "1.2")).to_have_count(0)
    add_condition(group, "Did an event")
    condition(page, "1.2").get_by_label("Event").fill("Order Completed")
    condition(page, "1.2").get_by_label("Event").press("Tab")
    expect(count).to_have_text("2 contacts match")
    assert loads == []  # every change came back through htmx, not a page load

    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(r"/t/acme/segments/[0-9a-f-]{36}/$"))
    segment = Segment.objects.get(tenant=contacts.acme, name="Engaged on gmail")
    assert page.url.endswith(f"/segments/{segment.public_id}/")
    expect(page.locator("#member-count")).to_have_text("2")
    members = page.locator("#segment-members")
    expect(members.get_by_role("link", name=re.compile("^Ben"))).to_be_visible()
    expect(members.get_by_role("link", name=re.compile("^Cat"))).to_be_visible()
    expect(members.get_by_role("link", name=re.compile("^Ann"))).to_have_count(0)
