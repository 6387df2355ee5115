"""The product shell in a real browser: Chromium, driven by Playwright, against the live server.

What a marketer does on day one: create a team, get an API key, bring in a colleague. Every page
must work with the app's own assets only: nothing is fetched from anywhere but the live server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import Browser, Dialog, Page, expect

from tenants.models import ApiKey, Membership, Role, Tenant, hash_api_key
from tests.browser import live_context
from tests.factories import PASSWORD, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.e2e

SIGN_UP_PASSWORD = "trail-mix-at-dawn-42"
# Generous: a 2-core CI machine can be slow; a passing run never waits for these.
expect.set_options(timeout=30_000)


@pytest.fixture
def requested_urls() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, live_server: Any, requested_urls: list[str]) -> Iterator[Page]:
    with live_context(browser, live_server.url, timeout_ms=30_000) as context:
        context.on("request", lambda request: requested_urls.append(request.url))
        yield context.new_page()


def assert_only_live_server(requested_urls: list[str], live_server: Any) -> None:
    server = urlsplit(live_server.url)
    assert server.hostname in {"localhost", "127.0.0.1"}
    assert requested_urls, "no requests were recorded"
    elsewhere = [url for url in requested_urls if urlsplit(url).netloc != server.netloc]
    assert not elsewhere, f"requests left the live server: {elsewhere}"


def mark_document(page: Page) -> None:
    """Tag the current document; a full page load would lose the tag, an htmx swap keeps it."""
    page.evaluate("window.__wayfarerSameDocument = true")


def wait_for_htmx_to_settle(page: Page) -> None:
    """htmx wires up the controls of swapped-in content as it settles (a few milliseconds after
    the new text shows). A person is never that fast; a test is, and its `change` would go
    unheard."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling,"
        " .htmx-added')"
    )


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__wayfarerSameDocument === true"), "the whole page reloaded"


def sign_up(page: Page, *, email: str, team: str, slug: str, time_zone: str) -> None:
    page.goto("/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(SIGN_UP_PASSWORD)
    page.get_by_label("Password again").fill(SIGN_UP_PASSWORD)
    page.get_by_label("Team or company name").fill(team)
    page.get_by_label("URL name").fill(slug)
    page.get_by_label("Timezone").select_option(time_zone)
    page.get_by_role("button", name="Create team").click()
    # Whether or not the address has an account, the answer is the same: check your inbox.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    # The link in the email confirms the address and signs the new owner in.
    [message] = [m for m in mail.outbox if m.to == [email]]
    [url] = re.findall(r"https?://\S+/accounts/verify/\S+/", message.body)
    page.goto(urlsplit(url).path)
    page.get_by_role("button", name="Confirm my address").click()


def log_in(page: Page, *, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def api_tenant_status(page: Page, raw_key: str) -> int:
    response = page.request.get("/api/v1/tenant/", headers={"Authorization": f"Bearer {raw_key}"})
    return response.status


def test_it_signs_up_a_new_team_and_lands_on_its_dashboard(
    page: Page, live_server: Any, requested_urls: list[str]
) -> None:
    sign_up(
        page,
        email="mara@trailhead.test",
        team="Trailhead Gear",
        slug="trailhead",
        time_zone="Europe/Berlin",
    )

    expect(page).to_have_url(f"{live_server.url}/t/trailhead/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Trailhead Gear")
    expect(page.get_by_role("status")).to_contain_text("mara@trailhead.test is confirmed")
    expect(page.locator("main")).to_contain_text("time zone Europe/Berlin")
    membership = Membership.objects.select_related("tenant", "user").get(tenant__slug="trailhead")
    assert (membership.user.email, membership.role) == ("mara@trailhead.test", Role.OWNER)
    assert membership.tenant.timezone == "Europe/Berlin"
    assert_only_live_server(requested_urls, live_server)


def test_it_shows_a_new_api_key_once_and_revokes_it_in_place(
    page: Page, live_server: Any, requested_urls: list[str]
) -> None:
    sign_up(page, email="ops@summit.test", team="Summit Co", slug="summit", time_zone="UTC")
    expect(page).to_have_url(f"{live_server.url}/t/summit/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API keys").click()
    expect(page).to_have_url(f"{live_server.url}/t/summit/settings/api-keys/")

    mark_document(page)
    page.get_by_label("Name", exact=True).fill("Shop backend")
    page.get_by_label("Kind").select_option("secret")
    page.get_by_role("button", name="Create key").click()

    revealed = page.locator("#new-api-key")
    expect(revealed).to_have_text(re.compile(r"^wf_sk_[0-9a-f]{12}_\S+$"))
    raw_key = revealed.inner_text()
    key = ApiKey.objects.get(tenant__slug="summit")
    assert key.key_hash == hash_api_key(raw_key), "the revealed key is not the stored one"
    assert_same_document(page)
    assert api_tenant_status(page, raw_key) == 200, "the new key does not open the API"

    page.reload()
    expect(page.get_by_role("row", name=re.compile("Shop backend"))).to_contain_text("active")
    expect(page.locator("#new-api-key")).to_have_count(0)
    assert raw_key not in page.content()

    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    mark_document(page)
    row = page.get_by_role("row", name=re.compile("Shop backend"))
    row.get_by_role("button", name="Revoke").click()

    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    assert_same_document(page)
    assert len(dialogs) == 1 and "Shop backend" in dialogs[0], dialogs
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_tenant_status(page, raw_key) == 401, "the revoked key still opens the API"
    assert_only_live_server(requested_urls, live_server)


@pytest.fixture
def northwind(transactional_db: None) -> Tenant:
    """A team whose owner signs in with a password, and a colleague who has an account."""
    tenant = TenantFactory(name="Northwind", slug="northwind")
    owner = UserFactory(email="owner@northwind.test", first_name="Nora")
    MembershipFactory(tenant=tenant, user=owner, role=Role.OWNER)
    UserFactory(email="erin@example.com", first_name="Erin")
    return tenant


def open_members_page(page: Page, live_server: Any) -> None:
    page.goto("/t/northwind/settings/members/")
    log_in(page, email="owner@northwind.test", password=PASSWORD)  # redirected to sign in first
    expect(page).to_have_url(f"{live_server.url}/t/northwind/settings/members/")


def test_it_adds_a_colleague_and_changes_their_role_in_place(
    page: Page, live_server: Any, requested_urls: list[str], northwind: Tenant
) -> None:
    open_members_page(page, live_server)
    panel = page.locator("#members-panel")

    mark_document(page)
    page.get_by_label("Email", exact=True).fill("erin@example.com")
    page.get_by_label("Role", exact=True).select_option("marketer")
    page.get_by_role("button", name="Add or invite").click()

    expect(panel).to_contain_text("erin@example.com joined as marketer")
    role = page.get_by_label("Role of erin@example.com")
    expect(role).to_have_value("marketer")
    wait_for_htmx_to_settle(page)

    role.select_option("admin")  # htmx posts on change; there is no button

    expect(panel).to_contain_text("erin@example.com is now admin")
    expect(page.get_by_label("Role of erin@example.com")).to_have_value("admin")
    assert_same_document(page)
    erin = Membership.objects.get(tenant=northwind, user__email="erin@example.com")
    assert erin.role == Role.ADMIN
    assert_only_live_server(requested_urls, live_server)


def test_an_unknown_email_is_invited_in_place(
    page: Page, live_server: Any, requested_urls: list[str], northwind: Tenant
) -> None:
    # Issue 18 item 5: no more "ask them to sign up first"; they get an invitation, listed as
    # pending in the same page (htmx), and no membership until they accept it.
    open_members_page(page, live_server)

    mark_document(page)
    page.get_by_label("Email", exact=True).fill("nobody@example.com")
    page.get_by_role("button", name="Add or invite").click()

    panel = page.locator("#members-panel")
    expect(panel).to_contain_text("Invitation sent to nobody@example.com")
    expect(panel.locator("tr", has_text="nobody@example.com")).to_contain_text("pending")
    assert_same_document(page)
    assert Membership.objects.filter(tenant=northwind).count() == 1
    assert_only_live_server(requested_urls, live_server)


def test_it_serves_htmx_from_the_app_itself(
    page: Page, live_server: Any, requested_urls: list[str]
) -> None:
    page.goto("/accounts/login/")

    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    assert str(page.evaluate("window.htmx.version")).startswith("2.")
    htmx_urls = [url for url in requested_urls if "htmx" in urlsplit(url).path]
    assert htmx_urls, f"no request loaded htmx: {requested_urls}"
    assert all(urlsplit(url).path.startswith("/static/") for url in htmx_urls), htmx_urls
    assert_only_live_server(requested_urls, live_server)
