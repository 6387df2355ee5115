"""The journey editor in a real Chromium against the live server: a marketer builds the
cart-abandonment journey from scratch by mouse, and again by keyboard only, and publishes it;
screenshots of the editor, the list and the test run are taken (at 1366 px; into
docs/screenshots/ with WAYFARER_SCREENSHOTS_TO_DOCS=1, else into the test's temporary folder, so
a test run leaves the checkout as it was), and the editor holds together on a 390 px phone.

The journey:

    When “Product Added” ─► Wait for “Order Completed”, 30 minutes, the same cart
                              └ Timed out ─► Email “Your cart” ─► Wait 24 hours ─► Push ─► Exit
    settings: leave on “Order Completed”
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from audience.models import Contact
from journeys.models import Edge, Journey, JourneyVersion, Node
from messaging.models import Channel, Template
from tests.browser import live_context
from tests.factories import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
expect.set_options(timeout=10_000)
pytestmark = pytest.mark.e2e


@pytest.fixture
def templates(world: Any) -> dict[str, Template]:
    return {
        "email": Template.objects.create(
            tenant=world.acme,
            name="Your cart",
            channel=Channel.EMAIL,
            subject="You left something in your cart",
            html="<p>{% for item in cart.items %}{{ item.name }} {% endfor %}</p>",
        ),
        "push": Template.objects.create(
            tenant=world.acme,
            name="Cart reminder",
            channel=Channel.PUSH,
            subject="Still thinking it over?",
            html="Your cart is waiting",
        ),
    }


def sign_in(page: Page, path: str, email: str = "dave@example.com") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path.split("?")[0])))


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1366, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert errors == [], f"JavaScript errors: {errors}"


def card(page: Page, title: str) -> Locator:
    """A step's card by its whole title."""
    name = re.compile(rf"^\s*{re.escape(title)}\s*$")
    return page.locator(".node-card", has=page.locator(".node-title a", has_text=name))


def panel(page: Page) -> Locator:
    return page.locator("#panel")


def save_step(page: Page) -> None:
    panel(page).get_by_role("button", name="Save step").click()
    expect(panel(page).locator(".saved-note")).to_be_visible()


def graph_of(journey: Journey) -> tuple[list[tuple[str, str]], set[tuple[str, str, str]]]:
    """(kind, label) of the draft's steps, and its edges as (source kind, port, target kind)."""
    version = JourneyVersion.objects.filter(journey=journey).order_by("-number").first()
    nodes = {n.key: n for n in Node.objects.filter(version=version)}
    edges = {
        (nodes[e.source].kind, e.port, nodes[e.target].kind)
        for e in Edge.objects.filter(version=version)
    }
    return [(n.kind, n.label) for n in nodes.values()], edges


CART_EDGES = {
    ("trigger_event", "next", "wait_event"),
    ("wait_event", "timeout", "action_email"),
    ("action_email", "next", "wait_delay"),
    ("wait_delay", "next", "action_push"),
    ("action_push", "next", "exit"),
}


def build_cart_journey_by_mouse(page: Page, world: Any) -> Journey:
    """New journey → the six steps by clicking (+, the palette, each step's form) → a drag →
    the exit event in the settings. The caller has signed in on the journey list."""
    loads: list[str] = []
    page.get_by_role("link", name="New journey").first.click()
    page.get_by_label("Name").fill("Cart abandonment")
    page.get_by_role("button", name="Create and open").click()
    expect(page.locator("h1")).to_have_text("Cart abandonment")
    journey = Journey.objects.get(tenant=world.acme, name="Cart abandonment")
    # The heading shows before the page's own load event fires (scripts, icons): count only the
    # loads after it.
    page.wait_for_load_state("load")
    page.on("load", lambda _: loads.append(page.url))

    # The trigger: a card that says what is missing, until it is set.
    trigger = page.locator(".node-card").first
    expect(trigger).to_have_class(re.compile("has-problem"))
    trigger.locator("[data-open-settings]").click()
    panel(page).get_by_label("Event").fill("Product Added")
    save_step(page)
    expect(card(page, "When an event happens")).not_to_have_class(re.compile("has-problem"))

    # + under the trigger → the palette → "Wait for an event": its settings open at once.
    page.get_by_role("button", name=re.compile("Add a step after “When an event happens”")).click()
    palette = page.locator("#palette")
    expect(palette).to_be_visible()
    expect(palette.get_by_role("group", name="Waits")).to_be_visible()
    palette.get_by_role("button", name=re.compile("^Wait for an event")).click()
    expect(palette).to_be_hidden()
    expect(panel(page).get_by_role("heading", name="Wait for an event")).to_be_visible()
    panel(page).get_by_label("Event").fill("Order Completed")
    panel(page).get_by_label("Wait at most").fill("30")
    panel(page).get_by_label("Unit").select_option("minutes")
    panel(page).get_by_label("The same").select_option("cart")
    save_step(page)
    expect(card(page, "Wait for an event")).to_contain_text("Timed out")

    # On its "Timed out" port: the email with the cart template.
    page.get_by_role("button", name="Add a step after “Wait for an event” (Timed out)").click()
    palette.get_by_role("button", name=re.compile("^Send an email")).click()
    panel(page).get_by_label("Template").select_option(label="Your cart")
    save_step(page)

    page.get_by_role("button", name="Add a step after “Send an email”").click()
    palette.get_by_role("button", name=re.compile("^Wait$|^Wait ")).first.click()
    panel(page).get_by_label("Wait", exact=True).fill("24")
    panel(page).get_by_label("Unit").select_option("hours")
    save_step(page)

    page.get_by_role("button", name="Add a step after “Wait”").click()
    palette.get_by_role("button", name=re.compile("^Send a web push")).click()
    panel(page).get_by_label("Template").select_option(label="Cart reminder")
    save_step(page)

    page.get_by_role("button", name="Add a step after “Send a web push”").click()
    palette.get_by_role("button", name=re.compile("^Exit")).click()
    expect(card(page, "Exit")).to_be_visible()

    # Drag the exit card somewhere else: its position is saved.
    exit_card = card(page, "Exit")
    box = exit_card.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 120, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 60, steps=8)
    page.mouse.up()
    expect(card(page, "Exit")).to_have_attribute("data-x", re.compile(r"\d+"))
    page.wait_for_timeout(300)
    exit_node = Node.objects.get(version__journey=journey, kind="exit")
    assert exit_node.x is not None and exit_node.y is not None

    # Settings: leave the journey when the order comes in.
    page.get_by_role("link", name="Journey settings").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Leave the journey on these events").fill("Order Completed")
    dialog.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Saved the journey's settings")

    kinds, edges = graph_of(journey)
    assert edges == CART_EDGES
    assert sorted(k for k, _ in kinds) == sorted(
        ["trigger_event", "wait_event", "action_email", "wait_delay", "action_push", "exit"]
    )
    assert len(loads) == 1, loads  # only the settings dialog's save reloads the page
    return journey


def test_it_builds_the_cart_abandonment_journey_by_mouse(
    page: Page, live_server: Any, world: Any, templates: dict[str, Template]
) -> None:
    sign_in(page, "/t/acme/journeys/")
    journey = build_cart_journey_by_mouse(page, world)

    # Publish: the dialog has no problems to show, only the button.
    page.get_by_role("link", name="Publish…").click()
    publish = page.locator("#publish-dialog")
    expect(publish.get_by_role("heading", name="Publish v1")).to_be_visible()
    publish.get_by_role("button", name="Publish v1").click()
    expect(page.locator("#journey-status")).to_have_text("Live")
    expect(page.locator("#version-note")).to_contain_text("Live: v1")
    journey.refresh_from_db()
    assert journey.status == "live"
    version = JourneyVersion.objects.get(journey=journey, state="published")
    assert version.exit_events == ["Order Completed"]
    assert version.trigger_event == "Product Added"


def test_it_builds_the_cart_abandonment_journey_by_keyboard_only(
    page: Page, live_server: Any, world: Any, templates: dict[str, Template]
) -> None:
    sign_in(page, "/t/acme/journeys/new/")
    page.keyboard.press("Tab")  # the form's name box has focus after a Tab or two
    page.get_by_label("Name").focus()
    page.keyboard.type("Cart abandonment by keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Cart abandonment by keyboard")
    journey = Journey.objects.get(tenant=world.acme, name="Cart abandonment by keyboard")
    keys = page.keyboard

    def focus_card(title: str) -> None:
        # Tab through the page until the card has focus (what a keyboard user does).
        target = card(page, title)
        for _ in range(80):
            if target.evaluate("el => el === document.activeElement"):
                return
            keys.press("Tab")
        raise AssertionError(f"Tab never reached the card “{title}”")

    def tab_to(locator: Locator) -> None:
        for _ in range(80):
            if locator.evaluate("el => el === document.activeElement"):
                return
            keys.press("Tab")
        raise AssertionError(f"Tab never reached {locator}")

    def add_after(title: str, port_name: str, kind: str) -> None:
        """`port_name` and `kind` are patterns (the port's label, the palette button's name)."""
        tab_to(
            page.get_by_role(
                "button", name=re.compile(re.escape(f"Add a step after “{title}”") + port_name)
            )
        )
        keys.press("Enter")
        palette = page.locator("#palette")
        expect(palette).to_be_visible()
        tab_to(palette.get_by_role("button", name=re.compile("^" + kind)))
        keys.press("Enter")
        expect(palette).to_be_hidden()
        # Focus lands in the new step's first setting.
        expect(panel(page).locator("[data-autofocus], :focus").first).to_be_focused()

    def save() -> None:
        keys.press("Enter")  # Enter in a text box submits the step's form
        expect(panel(page).locator(".saved-note")).to_be_visible()

    # The trigger: focus its card, Enter opens its settings.
    focus_card("When an event happens")
    keys.press("Enter")
    event = panel(page).get_by_label("Event")
    tab_to(event)
    keys.type("Product Added")
    save()

    add_after("When an event happens", "", "Wait for an event")
    tab_to(panel(page).get_by_label("Event"))
    keys.type("Order Completed")
    keys.press("Tab")
    keys.press("Control+a")
    keys.type("30")
    keys.press("Tab")
    panel(page).get_by_label("Unit").press("m")  # a select picks "minutes" by its first letter
    keys.press("Tab")
    panel(page).get_by_label("The same").press("c")
    expect(panel(page).get_by_label("The same")).to_have_value("cart")
    tab_to(panel(page).get_by_label("Wait at most"))
    save()

    add_after("Wait for an event", re.escape(" (Timed out)"), "Send an email")
    panel(page).get_by_label("Template").press("Y")
    expect(panel(page).get_by_label("Template")).to_have_value(str(templates["email"].public_id))
    tab_to(panel(page).get_by_role("button", name="Save step"))
    keys.press("Enter")
    expect(panel(page).locator(".saved-note")).to_be_visible()

    add_after("Send an email", "", "Wait$")  # the plain delay
    keys.press("Control+a")
    keys.type("24")
    keys.press("Tab")
    panel(page).get_by_label("Unit").press("h")
    tab_to(panel(page).get_by_label("Wait", exact=True))
    save()

    add_after("Wait", "$", "Send a web push")
    panel(page).get_by_label("Template").press("C")
    tab_to(panel(page).get_by_role("button", name="Save step"))
    keys.press("Enter")
    expect(panel(page).locator(".saved-note")).to_be_visible()

    add_after("Send a web push", "", "Exit")

    # Move the exit card with M, arrows, Enter.
    focus_card("Exit")
    before = int(card(page, "Exit").get_attribute("data-x") or 0)
    keys.press("m")
    keys.press("ArrowRight")
    keys.press("ArrowRight")
    keys.press("Enter")
    expect(card(page, "Exit")).to_have_attribute("data-x", str(before + 40))
    expect(card(page, "Exit")).to_be_focused()  # focus survives the canvas being redrawn

    # Delete (asks first) a stray step, from the keyboard.
    page.once("dialog", lambda dialog: dialog.accept())
    focus_card("Exit")
    keys.press("Delete")
    expect(card(page, "Exit")).to_have_count(0)
    add_after("Send a web push", "", "Exit")

    # Pan and zoom from the keyboard.
    page.locator("#canvas-frame").focus()
    keys.press("+")
    expect(page.locator("#zoom-level")).not_to_have_text("100%")
    keys.press("0")
    keys.press("ArrowDown")

    # Settings and publish, from the keyboard.
    tab_to(page.get_by_role("link", name="Journey settings"))
    keys.press("Enter")
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    tab_to(dialog.get_by_label("Leave the journey on these events"))
    keys.type("Order Completed")
    tab_to(dialog.get_by_role("button", name="Save settings"))
    keys.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Saved the journey's settings")

    tab_to(page.get_by_role("link", name="Publish…"))
    keys.press("Enter")
    publish = page.locator("#publish-dialog")
    expect(publish).to_be_visible()
    tab_to(publish.get_by_role("button", name="Publish v1"))
    keys.press("Enter")
    expect(page.locator("#journey-status")).to_have_text("Live")
    assert graph_of(journey)[1] == CART_EDGES
    assert JourneyVersion.objects.get(journey=journey, state="published").exit_events == [
        "Order Completed"
    ]


def test_it_sends_publish_problems_to_the_step_at_fault(
    page: Page, live_server: Any, world: Any
) -> None:
    from journeys import services

    journey = services.journey_create(tenant=world.acme, name="Unfinished")
    services.node_add(journey=journey, kind="action_email", after=("n1", "next"))
    sign_in(page, f"/t/acme/journeys/{journey.public_id}/")
    page.get_by_role("link", name="Publish…").click()
    publish = page.locator("#publish-dialog")
    expect(publish.get_by_role("heading", name="Not ready to publish")).to_be_visible()
    publish.get_by_role("link", name="Template is required.").click()
    expect(publish).to_be_hidden()
    expect(card(page, "Send an email")).to_be_focused()
    expect(panel(page).get_by_label("Template")).to_have_attribute("aria-invalid", "true")


def test_it_takes_the_screenshots_for_the_docs(
    page: Page, live_server: Any, world: Any, tmp_path: Path
) -> None:
    from journeys import presets, services

    out = SCREENSHOTS if os.environ.get("WAYFARER_SCREENSHOTS_TO_DOCS") == "1" else tmp_path
    journey = presets.preset_create(tenant=world.acme, key="cart_abandonment")
    services.journey_publish(journey=journey)
    presets.preset_create(tenant=world.acme, key="onboarding_welcome")
    Contact.objects.create(
        tenant=world.acme, email="ann@example.com", first_name="Ann", email_consent="granted"
    )
    out.mkdir(parents=True, exist_ok=True)
    sign_in(page, "/t/acme/journeys/")
    page.screenshot(path=out / "journey-list.png", full_page=True)

    page.goto(f"/t/acme/journeys/{journey.public_id}/")
    page.locator(".node-card").first.locator("[data-open-settings]").click()
    expect(panel(page).get_by_role("button", name="Save step")).to_be_visible()
    page.screenshot(path=out / "journey-editor.png")

    page.get_by_role("link", name="Test run").click()
    panel(page).get_by_label("Contact's email").fill("ann")
    panel(page).get_by_role("button", name="Find").click()
    panel(page).get_by_role("link", name="ann@example.com").click()
    expect(panel(page).locator(".sim-steps")).to_be_visible()
    page.screenshot(path=out / "journey-test-run.png")

    # A phone: the canvas scrolls inside its frame, the page itself never sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/t/acme/journeys/{journey.public_id}/")
    expect(page.locator(".node-card").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=out / "journey-editor-phone.png", full_page=True)
    page.goto("/t/acme/journeys/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
