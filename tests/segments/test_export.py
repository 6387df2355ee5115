"""Exporting a segment's members as CSV (issue 18 item 10): the file holds exactly the segment's
current members and only this team's, in the contacts export's columns with spreadsheet formulas
defused; a viewer is refused (403) and another team's segment is not found (404)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from audience.models import Contact
from audience.selectors import contact_export_rows
from segments import services
from segments.models import Segment

pytestmark = pytest.mark.django_db

VIP = {
    "type": "group",
    "operator": "and",
    "children": [{"type": "attribute", "field": "email", "operator": "contains", "value": "vip"}],
}


def export_url(segment: Segment) -> str:
    return f"/t/{segment.tenant.slug}/segments/{segment.public_id}/members.csv"


def rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def vip(world: Any) -> Segment:
    for tenant, emails in (
        (world.acme, ["a.vip@example.com", "b.vip@example.com", "plain@example.com"]),
        (world.globex, ["g.vip@example.com"]),
    ):
        for email in emails:
            Contact.objects.create(tenant=tenant, email=email, first_name=email.split("@")[0])
    # A member whose first name is a formula: the export must not hand it to a spreadsheet.
    Contact.objects.create(
        tenant=world.acme, email="evil.vip@example.com", first_name='=HYPERLINK("x")'
    )
    # The same segment name in the other team, so only tenant scoping keeps them apart.
    services.segment_create(tenant=world.globex, name="VIP", rules=VIP)
    segment = services.segment_create(tenant=world.acme, name="VIP", rules=VIP)
    return segment


def test_export_holds_exactly_the_members_with_formulas_defused(
    world: Any, login: Any, vip: Segment
) -> None:
    response = login(world.dave).get(export_url(vip))  # dave: acme marketer
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="acme-vip-members.csv"'
    got = rows(response)
    assert sorted(r["email"] for r in got) == [
        "a.vip@example.com",
        "b.vip@example.com",
        "evil.vip@example.com",
    ]
    evil = next(r for r in got if r["email"] == "evil.vip@example.com")
    assert evil["first_name"] == '\'=HYPERLINK("x")'
    # The same columns as the contacts list's export.
    contacts = login(world.dave).get("/t/acme/contacts/export.csv")
    header = b"".join(contacts.streaming_content).decode().splitlines()[0]
    exported = b"".join(login(world.dave).get(export_url(vip)).streaming_content).decode()
    assert exported.splitlines()[0] == header
    assert header.split(",") == next(contact_export_rows(Contact.objects.none()))


def test_export_follows_membership_changes(world: Any, login: Any, vip: Segment) -> None:
    Contact.objects.filter(tenant=world.acme, email="b.vip@example.com").update(
        email="b@example.com"
    )
    services.segment_membership_refresh(segment=vip)
    got = rows(login(world.alice).get(export_url(vip)))
    assert sorted(r["email"] for r in got) == ["a.vip@example.com", "evil.vip@example.com"]


def test_empty_segment_exports_the_header_only(world: Any, login: Any) -> None:
    empty = services.segment_create(tenant=world.acme, name="Nobody", rules=VIP)
    response = login(world.dave).get(export_url(empty))
    assert response.status_code == 200
    assert rows(response) == []


def test_viewer_is_refused_and_sees_no_button(world: Any, login: Any, vip: Segment) -> None:
    client = login(world.bob)  # acme viewer
    assert client.get(export_url(vip)).status_code == 403
    page = client.get(f"/t/acme/segments/{vip.public_id}/").content.decode()
    assert "members.csv" not in page
    marketer_page = login(world.dave).get(f"/t/acme/segments/{vip.public_id}/").content.decode()
    assert export_url(vip) in marketer_page


def test_another_teams_segment_is_not_found(world: Any, login: Any, vip: Segment) -> None:
    globex_vip = Segment.objects.get(tenant=world.globex)
    client = login(world.alice)
    # Globex's segment under acme's address, and acme's segment from globex's owner.
    assert client.get(f"/t/acme/segments/{globex_vip.public_id}/members.csv").status_code == 404
    assert login(world.charlie).get(export_url(vip)).status_code == 404
    missing = "/t/acme/segments/00000000-0000-0000-0000-000000000000/members.csv"
    assert client.get(missing).status_code == 404


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_export_button_in_a_browser(
    browser: Any, live_server: Any, world: Any, vip: Segment, tmp_path: Path
) -> None:
    """A marketer downloads the file from the segment's page; the page fits a phone."""
    from playwright.sync_api import expect

    from tests.browser import live_context
    from tests.factories import PASSWORD

    shots = Path("/work/wt/_notes/shots")
    shots = shots if shots.is_dir() else tmp_path
    with live_context(browser, live_server.url, timeout_ms=60_000) as context:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill("dave@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        page.goto(f"/t/acme/segments/{vip.public_id}/")
        button = page.get_by_role("link", name="Export members as CSV")
        expect(button).to_be_visible()
        for label, (width, height) in {"desktop": (1366, 900), "phone": (390, 844)}.items():
            page.set_viewport_size({"width": width, "height": height})
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"segment page at {width}px is {wide}px wide"
            page.screenshot(path=str(shots / f"segment-export-{label}.png"), full_page=True)
        with page.expect_download() as download:
            button.click()
        path = download.value.path()
        assert download.value.suggested_filename == "acme-vip-members.csv"
        got = list(csv.DictReader(io.StringIO(Path(path).read_text())))
        assert sorted(r["email"] for r in got) == [
            "a.vip@example.com",
            "b.vip@example.com",
            "evil.vip@example.com",
        ]
