"""CSV import in a real Chromium against the live server, as a marketer does it: upload with the
date format chosen, map, watch the progress (rows per second, time left) and see the import
done with its warnings without reloading the page. At 1366 px and on a 390 px phone: nothing
wider than the screen, no console errors, and screenshots (into /work/wt/_notes/shots/ when that
folder exists, else the test's temporary folder) to look at."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from audience import csv_io
from audience.models import Contact, ContactImport
from tests.browser import live_context
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e
expect.set_options(timeout=30_000)

NOTES_SHOTS = Path("/work/wt/_notes/shots")
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
ROWS = 240


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return NOTES_SHOTS if NOTES_SHOTS.is_dir() else tmp_path


@pytest.fixture
def page(browser: Browser, live_server: Any, transactional_db: None, world: Any) -> Iterator[Page]:
    # A busy machine (two cores, other suites) serves the first page slowly.
    with live_context(browser, live_server.url, timeout_ms=60_000) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill("dave@example.com")  # a marketer imports
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        yield page
        assert errors == [], f"console errors: {errors}"


def shoot(page: Page, name: str, shots: Path) -> None:
    """Screenshots of the page as it is now at both widths; nothing wider than a phone."""
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"
        page.screenshot(path=str(shots / f"csv-import-{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def the_file() -> bytes:
    lines = ["Customer ID,Email,First name,Birthday,Newsletter,Favourite colour"]
    for i in range(ROWS):
        born = "31/12/1985" if i % 60 == 7 else f"{1 + i % 12:02d}/{1 + i % 28:02d}/1980"
        lines.append(f"crm-{i},person{i}@example.com,Person {i},{born},yes,blue")
    lines.append(",,Nobody,,,")  # names no contact: not imported
    return ("\n".join(lines) + "\n").encode()


def test_a_marketer_imports_watches_it_run_and_sees_it_done_without_reloading(
    page: Page, world: Any, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page.goto("/t/acme/contacts/import/")
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()
    shoot(page, "start", shots)

    page.get_by_label("CSV file").set_input_files(
        {"name": "crm-export.csv", "mimeType": "text/csv", "buffer": the_file()}
    )
    page.get_by_label("Dates in the file are written").select_option("mdy")
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.get_by_role("heading", name="What does each column hold?")).to_be_visible()
    expect(page.get_by_label("Birthdays are written")).to_have_value("mdy")
    shoot(page, "mapping", shots)
    page.get_by_role("button", name=f"Import {ROWS + 1} rows").click()

    # No worker runs in this test: the import waits, and the page says so.
    progress = page.locator("#import-progress")
    expect(progress.get_by_role("heading", name="Waiting to start")).to_be_visible()
    expect(page.get_by_text("Importing")).to_have_count(0)  # no message that outlives the import
    job = ContactImport.objects.get(tenant=world.acme)

    # The worker's first slices (as contact_import_run runs them), then a pause.
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 40)
    monkeypatch.setattr(csv_io, "MAX_SLICE_ROWS", 40)
    ContactImport.objects.filter(pk=job.pk).update(status=ContactImport.Status.RUNNING)
    job = csv_io.import_run(tenant=world.acme, job=job, seconds=0)
    time.sleep(1.1)  # a speed needs a second of history
    job = csv_io.import_run(tenant=world.acme, job=job, seconds=0)
    expect(progress.get_by_role("heading", name="Importing")).to_be_visible()
    expect(progress).to_contain_text(f"80 of {ROWS + 1} rows")
    expect(progress).to_contain_text("rows/s")
    expect(progress).to_contain_text("left")
    shoot(page, "running", shots)

    # The rest: the page turns to done by itself, then stops asking.
    csv_io.import_run(tenant=world.acme, job=job)
    expect(progress.get_by_role("heading", name="Done")).to_be_visible()
    expect(progress).to_contain_text(f"{ROWS + 1} rows in")
    expect(progress).to_contain_text("Cells left out")
    expect(progress).to_contain_text("Row 9 Birthday: “31/12/1985” is not a date written MM/DD")
    expect(progress).to_contain_text("Rows that were not imported")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/contacts/import/" in r.url else None)
    page.wait_for_timeout(2500)
    assert polls == [], "the finished page keeps polling"
    shoot(page, "done", shots)

    assert Contact.objects.filter(tenant=world.acme).count() == ROWS
    person = Contact.objects.get(tenant=world.acme, user_id="crm-8")
    assert (person.birthday_month, person.birthday_day) == (9, 9)
    assert Contact.objects.get(tenant=world.acme, user_id="crm-7").birthday_month is None

    page.goto("/t/acme/contacts/import/")
    expect(page.get_by_role("link", name="crm-export.csv")).to_be_visible()
    shoot(page, "start-with-recent", shots)
