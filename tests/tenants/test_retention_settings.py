"""The "Data retention" section of the team settings page: admins and owners set how many months
of raw events the team keeps; everyone sees what the setting removes and what stays.

acme's history (the clock stands at 15 December 2026):

    ann   Product Viewed  2024-03, 2025-06, 2026-11     Order Completed 2025-06 (40)
    globex: zed, 50 Product Viewed in 2020 (never counted for acme)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from playwright.sync_api import Browser, Page, expect

from audience.models import Contact, Event
from audience.services import Fact, events_record
from tests.browser import live_context
from tests.factories import PASSWORD

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)
URL = "/t/acme/settings/"
PREVIEW = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "retention-preview"}


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    # Ticking: the live server's threads and timeouts need a clock that moves.
    with time_machine.travel(NOW):
        yield


@pytest.fixture
def history(world: Any) -> Any:
    ann = Contact.objects.create(tenant=world.acme, user_id="ann")
    facts = [
        Fact(ann.pk, "Product Viewed", key=f"v{n}", source="t", occurred_at=when)
        for n, when in enumerate(
            [
                datetime(2024, 3, 5, tzinfo=UTC),
                datetime(2025, 6, 5, tzinfo=UTC),
                datetime(2026, 11, 5, tzinfo=UTC),
            ]
        )
    ]
    facts.append(
        Fact(
            ann.pk,
            "Order Completed",
            key="o1",
            source="t",
            properties={"total": 40},
            occurred_at=datetime(2025, 6, 6, tzinfo=UTC),
        )
    )
    events_record(tenant=world.acme, facts=facts)
    zed = Contact.objects.create(tenant=world.globex, user_id="zed")
    events_record(
        tenant=world.globex,
        facts=[
            Fact(
                zed.pk,
                "Product Viewed",
                key=f"z{n}",
                source="t",
                occurred_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
            for n in range(50)
        ],
    )
    return world


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def save(client: Any, months: object, **extra: str) -> Any:
    return client.post(URL, {"section": "retention", "event_retention_months": months, **extra})


# --- Who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "olivia"], ids=["admin", "owner"])
def test_it_lets_admins_and_owners_set_the_months(login, world, who) -> None:
    response = save(login(getattr(world, who)), 30)
    assert response.status_code == 302
    assert response["Location"] == f"{URL}#retention"
    world.acme.refresh_from_db()
    assert world.acme.event_retention_months == 30
    page = text(login(getattr(world, who)).get(URL))
    assert "Data retention saved: raw events are kept for 30 months." in page
    assert 'value="30"' in page


@pytest.mark.parametrize("who", ["dave", "bob"], ids=["marketer", "viewer"])
def test_it_keeps_marketers_and_viewers_to_reading_it(login, world, who) -> None:
    client = login(getattr(world, who))
    assert save(client, 30).status_code == 403
    world.acme.refresh_from_db()
    assert world.acme.event_retention_months is None
    page = text(client.get(URL))
    assert "Data retention" in page
    assert "Raw events kept for</dt><dd>25 months (the default)" in page
    assert "Only admins and owners can change this." in page
    assert 'name="event_retention_months"' not in page  # no input, no Save button
    # What the setting removes is for everyone to see.
    preview = text(client.get(URL, {"event_retention_months": ""}, **PREVIEW))
    assert "events that happened before <strong>1 November 2024</strong> go" in preview


def test_it_shows_the_months_a_team_chose_to_its_viewers(login, world) -> None:
    world.acme.event_retention_months = 13
    world.acme.save(update_fields=["event_retention_months"])
    page = text(login(world.bob).get(URL))
    assert "Raw events kept for</dt><dd>13 months</dd>" in page


def test_it_leaves_the_months_alone_when_the_team_form_is_saved(login, world) -> None:
    world.acme.event_retention_months = 13
    world.acme.save(update_fields=["event_retention_months"])
    login(world.alice).post(URL, {"name": "Acme Corp", "timezone": "UTC"})
    world.acme.refresh_from_db()
    assert (world.acme.name, world.acme.event_retention_months) == ("Acme Corp", 13)


def test_an_empty_field_goes_back_to_the_default(login, world) -> None:
    world.acme.event_retention_months = 13
    world.acme.save(update_fields=["event_retention_months"])
    response = save(login(world.alice), "")
    assert response.status_code == 302
    world.acme.refresh_from_db()
    assert world.acme.event_retention_months is None


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "error"),
    [
        ("0", "Keep events for at least 1 month."),
        ("121", "Keep events for at most 120 months (ten years)."),
        ("-3", "Keep events for at least 1 month."),
        ("twelve", "Enter a whole number of months, 1 to 120."),
        ("2.5", "Enter a whole number of months, 1 to 120."),
    ],
    ids=["zero", "too-many", "negative", "words", "fraction"],
)
def test_it_shows_bad_months_in_place_and_changes_nothing(login, world, months, error) -> None:
    client = login(world.alice)
    response = save(client, months)
    assert response.status_code == 200
    page = text(response)
    assert f'<ul class="errorlist" id="id_event_retention_months_errors"><li>{error}</li>' in page
    assert 'aria-invalid="true"' in page
    assert f'value="{months}"' in page  # what was typed stays in the field
    world.acme.refresh_from_db()
    assert world.acme.event_retention_months is None
    # The preview says the same while typing.
    preview = text(client.get(URL, {"event_retention_months": months}, **PREVIEW))
    assert f'role="alert"><li>{error}</li>' in preview


# --- What it removes ----------------------------------------------------------------------------


def test_the_preview_says_from_when_how_many_and_what_stays(login, history) -> None:
    preview = text(login(history.alice).get(URL, {"event_retention_months": "13"}, **PREVIEW))
    assert "<html" not in preview  # the partial alone
    assert (
        "With 13 months, events that happened before <strong>1 November 2025</strong> go."
        in preview
    )
    # 2024-03 and 2025-06 (a view and the order event); not globex's fifty.
    assert (
        "The next nightly run removes <strong>3 events</strong>, from March 2024 to October 2025"
        " (20 months)." in preview
    )
    assert "the order history (1 order from before then)" in preview
    assert "contact profiles (lifecycle stage, cart, wishlist, consent)" in preview
    assert "daily totals per event" in preview
    assert "campaign results (kept as they stood when final)" in preview


def test_the_preview_says_when_nothing_would_go(login, history) -> None:
    preview = text(login(history.alice).get(URL, {"event_retention_months": "120"}, **PREVIEW))
    assert "Nothing stored is that old: nothing would be removed" in preview
    assert "(the oldest event stored is from 5 March 2024)" in preview


def test_the_preview_of_an_empty_field_is_the_default(login, history) -> None:
    preview = text(login(history.alice).get(URL, {"event_retention_months": ""}, **PREVIEW))
    assert "With 25 months, events that happened before <strong>1 November 2024</strong>" in preview
    assert (
        "removes <strong>1 event</strong>, from March 2024 to October 2024 (8 months)." in preview
    )


def test_the_page_loads_the_preview_of_the_current_setting(login, history) -> None:
    page = text(login(history.alice).get(URL))
    assert 'hx-get="/t/acme/settings/?event_retention_months="' in page
    assert 'hx-trigger="load"' in page
    assert 'hx-target="#retention-preview"' in page  # and again on every change of the field


def test_it_counts_only_the_teams_own_events(login, history) -> None:
    globex = text(
        login(history.charlie).get(
            "/t/globex/settings/", {"event_retention_months": "1"}, **PREVIEW
        )
    )
    assert "removes <strong>50 events</strong>, from January 2020 to October 2026" in globex
    acme = text(login(history.alice).get(URL, {"event_retention_months": "1"}, **PREVIEW))
    assert "removes <strong>3 events</strong>" in acme
    # Nor can one team ask about another's.
    assert (
        login(history.charlie).get(URL, {"event_retention_months": "1"}, **PREVIEW).status_code
        == 404
    )


# --- Removing more than now needs a tick --------------------------------------------------------


def test_keeping_less_asks_to_confirm_the_events_it_removes(login, history) -> None:
    client = login(history.alice)
    preview = text(client.get(URL, {"event_retention_months": "13"}, **PREVIEW))
    assert "Yes, remove 2 events that the current setting keeps, for good" in preview

    refused = save(client, 13)
    assert refused.status_code == 200
    assert "Tick the box: these events cannot be brought back." in text(refused)
    history.acme.refresh_from_db()
    assert history.acme.event_retention_months is None

    assert save(client, 13, confirm="on").status_code == 302
    history.acme.refresh_from_db()
    assert history.acme.event_retention_months == 13
    assert Event.objects.filter(tenant=history.acme).count() == 4  # removed tonight, not now


def test_keeping_more_or_nothing_older_needs_no_tick(login, history) -> None:
    client = login(history.alice)
    assert save(client, 60).status_code == 302  # longer than the default
    assert save(client, 50).status_code == 302  # shorter, but nothing stored is that old
    history.acme.refresh_from_db()
    assert history.acme.event_retention_months == 50


# --- In a browser -------------------------------------------------------------------------------


@pytest.fixture
def page(
    browser: Browser, live_server: Any, transactional_db: None, history: Any
) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        page.goto(URL)
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        yield page


def test_an_admin_sees_the_preview_follow_the_months_and_saves(page: Page) -> None:
    section = page.locator("#retention")
    preview = section.locator("#retention-preview")
    expect(preview).to_contain_text(
        "With 25 months, events that happened before 1 November 2024 go."
    )
    field = section.get_by_label("Keep raw events for (months)")
    field.fill("13")
    expect(preview).to_contain_text("before 1 November 2025 go.")
    expect(preview).to_contain_text("removes 3 events")
    field.fill("0")
    expect(preview).to_contain_text("Keep events for at least 1 month.")
    field.fill("13")
    section.get_by_label(re.compile("Yes, remove 2 events")).check()
    section.get_by_role("button", name="Save retention").click()
    expect(page.locator(".messages")).to_contain_text("raw events are kept for 13 months")
    expect(section.get_by_label("Keep raw events for (months)")).to_have_value("13")
