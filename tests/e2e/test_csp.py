"""The Content-Security-Policy that the UI passes: every page a marketer or an operator can reach,
crawled in a real browser, carries the policy and breaks none of it.

A violation is what a real deployment would see as a broken button (an inline handler that no
longer runs) or a missing style; the browser reports each one as a `securitypolicyviolation`
event, which the init script below collects on every page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from accounts.models import User
from ops.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
from tests.browser import live_context

pytestmark = pytest.mark.e2e

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
    `(${event.sourceFile || ""}:${event.lineNumber || ""})`);
});
"""
# Links a crawl must not follow: they change state even on GET, or leave the product.
SKIP = re.compile(r"/(logout|m/u/|m/c/|m/pc/|m/o/)|^mailto:|^javascript:|\.(csv|json|js|gif)$")
MAX_PAGES = 80


@pytest.fixture
def context(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    with live_context(browser, live_server.url, timeout_ms=30_000) as context:
        context.add_init_script(COLLECT_VIOLATIONS)
        yield context


def log_in(page: Page, *, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("Log in|Sign in")).click()
    page.wait_for_load_state("networkidle")


def crawl(page: Page, base_url: str, start: list[str], *, within: tuple[str, ...]) -> dict:
    """Visit every same-origin page reachable from `start` under the `within` prefixes; return
    {path: (csp header, violations)}."""
    seen: dict[str, tuple[str | None, list[str]]] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        response = page.goto(urljoin(base_url, path))
        assert response is not None
        page.wait_for_load_state("networkidle")
        seen[path] = (
            response.headers.get("content-security-policy"),
            page.evaluate("window.__cspViolations"),
        )
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            parts = urlsplit(href)
            if parts.netloc != urlsplit(base_url).netloc or SKIP.search(href):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target.startswith(within) and target not in seen:
                queue.append(target)
    return seen


def assert_clean(seen: dict) -> None:
    assert seen, "no page was visited"
    without = [path for path, (header, _) in seen.items() if not header]
    assert not without, f"pages without a Content-Security-Policy header: {without}"
    broken = {path: violations for path, (_, violations) in seen.items() if violations}
    assert not broken, f"pages that break their Content-Security-Policy: {broken}"


@pytest.mark.django_db(transaction=True)
def test_every_page_a_marketer_reaches_passes_the_policy(
    context: BrowserContext, live_server: Any
) -> None:
    tenant = seed_demo()
    page = context.new_page()
    log_in(page, email=DEMO_EMAIL, password=DEMO_PASSWORD)
    seen = crawl(page, live_server.url, [f"/t/{tenant.slug}/"], within=(f"/t/{tenant.slug}/",))
    # The crawl got past the dashboard into every section, not just the first page.
    assert len(seen) >= 15, sorted(seen)
    assert_clean(seen)


@pytest.mark.django_db(transaction=True)
def test_the_pages_that_run_scripts_still_work_under_the_policy(
    context: BrowserContext, live_server: Any
) -> None:
    """The demo shop runs the tracker snippet and its own script inline (with the nonce); the
    destructive forms ask before submitting (data-confirm, no inline handler); the API docs run
    Swagger UI."""
    tenant = seed_demo()
    page = context.new_page()
    log_in(page, email=DEMO_EMAIL, password=DEMO_PASSWORD)

    page.goto(f"/t/{tenant.slug}/demo-shop/")
    page.get_by_role("button", name=re.compile("Open the demo shop|Start", re.I)).click()
    page.wait_for_function("() => window.wayfarer && window.wayfarer.loaded === true")
    assert page.evaluate("window.__cspViolations") == []

    page.goto(f"/t/{tenant.slug}/segments/")
    page.locator("table a").first.click()
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete").click()
    assert asked and "Delete this segment?" in asked[0]
    assert "/segments/" in page.url  # dismissed: nothing deleted, still on the segment
    assert page.evaluate("window.__cspViolations") == []

    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")
    assert page.evaluate("window.__cspViolations") == []


@pytest.mark.django_db(transaction=True)
def test_the_operators_admin_passes_the_policy(context: BrowserContext, live_server: Any) -> None:
    seed_demo()
    User.objects.create_superuser(email="ops@wayfarer.test", password="ops-password-4242")
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "ops@wayfarer.test")
    page.fill("#id_password", "ops-password-4242")
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")
    seen = crawl(page, live_server.url, ["/admin/"], within=("/admin/",))
    assert len(seen) >= 10, sorted(seen)
    assert_clean(seen)
