"""The browser SDKs shops run, unchanged, pointed at Wayfarer: Segment's analytics.js 2.0
(`@segment/analytics-next`) and RudderStack's JavaScript SDK (`@rudderstack/analytics-js`).

The versions tests/e2e/sdk/package-lock.json pins are installed with `npm ci` when missing. A
second local server plays the shop: it serves a page and the SDK bundles (no CDN is reachable, so
the SDKs get their settings inline), from another origin than Wayfarer's live server, so every
call crosses CORS as on a real site. Chromium makes page / identify / track / group calls in
standard and in batching delivery; Wayfarer answers the first request 500 after storing it, so
the SDK's retry (with its retry headers) must go through the preflight and be stored once.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from playwright.sync_api import Browser, ConsoleMessage

from audience import ingest_views
from audience.models import Contact, Event
from tenants import services
from tests.browser import live_context
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SDK_DIR = Path(__file__).resolve().parent / "sdk"
MODULES = SDK_DIR / "node_modules"
SEGMENT_DIST = MODULES / "@segment" / "analytics-next" / "dist" / "umd"
RUDDERSTACK_BUNDLE = (
    MODULES / "@rudderstack" / "analytics-js" / "dist" / "npm" / "modern" / "bundled" / "umd"
)
RECORDED_WITHIN_SECONDS = 90  # retries back off for a few seconds; the machine is shared

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="/{script}"></script></head><body><h1>Shop</h1></body></html>"""

# Each SDK's calls, in the page. The calls are not awaited: a failed delivery is retried later,
# and the test waits for what the server stored instead.
SEGMENT_CALLS = """async ({writeKey, apiHost, batching, userId}) => {
  const segmentio = {apiKey: writeKey, apiHost, protocol: "http"};
  if (batching) {
    segmentio.deliveryStrategy = {strategy: "batching", config: {size: 10, timeout: 1000}};
  }
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {writeKey, cdnURL: location.origin, cdnSettings: {integrations: {"Segment.io": segmentio}}},
    {integrations: {"Segment.io": {apiHost, protocol: "http"}}},
  );
  analytics.page("Pricing", {plan: "pro"});
  analytics.identify(userId, {email: "ann@example.com", firstName: "Ann"});
  analytics.track("Signed Up", {plan: "pro"});
  analytics.group("acme-inc", {name: "Acme Inc", plan: "enterprise"});
  return true;
}"""

RUDDERSTACK_CALLS = """({writeKey, dataPlaneUrl, batching, userId}) => {
  const analytics = new rudderanalytics.RudderAnalytics();
  analytics.load(writeKey, dataPlaneUrl, {
    // The source's settings inline: no control plane to fetch them from.
    getSourceConfig: () => ({source: {
      id: "wayfarer-test", name: "Shop", writeKey, workspaceId: "wayfarer", enabled: true,
      config: {}, destinations: [],
    }}),
    polyfillIfRequired: false,
    logLevel: "ERROR",
    queueOptions: {
      minRetryDelay: 500,
      batch: batching ? {enabled: true, maxItems: 10, flushInterval: 1000} : {enabled: false},
    },
  });
  analytics.page("Pricing", {plan: "pro"});
  analytics.identify(userId, {email: "ann@example.com", firstName: "Ann"});
  analytics.track("Signed Up", {plan: "pro"});
  analytics.group("acme-inc", {name: "Acme Inc", plan: "enterprise"});
  return true;
}"""

# What each SDK adds to a retried request.
RETRY_HEADER = {"segment": "X-Retry-Count", "rudderstack": "Rsa-Retry-Attempt"}


def _install_sdks() -> None:
    if (SEGMENT_DIST / "index.js").exists() and (RUDDERSTACK_BUNDLE / "index.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the browser SDK tests install their SDKs with it")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=SDK_DIR,
        check=True,
        timeout=600,
    )


class _ShopHandler(http.server.SimpleHTTPRequestHandler):
    """The shop's site: its page, the SDK bundles, and Segment's lazily loaded chunks."""

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path == "/segment.js":
            return str(SEGMENT_DIST / "index.js")
        if path.startswith("/analytics-next/bundles/"):
            return str(SEGMENT_DIST / Path(path).name)
        if path == "/rudderstack.js":
            return str(RUDDERSTACK_BUNDLE / "index.js")
        return "/nonexistent"

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].strip("/")
        if name in ("segment.html", "rudderstack.html"):
            body = PAGE.format(script=name.replace(".html", ".js")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    """The shop's origin, e.g. http://127.0.0.1:41234 (Wayfarer's live server is another)."""
    _install_sdks()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShopHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FlakyDoor:
    """Wraps the ingestion view: the first accepted request is stored, then answered 500 as if
    the server had failed after all, so the SDK retries it. Keeps every request's headers."""

    def __init__(self, real: Callable[[HttpRequest, str], HttpResponse]) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.failed: str | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: HttpRequest, kind: str) -> HttpResponse:
        with self.lock:
            self.requests.append((request.path, dict(request.headers)))
        response = self.real(request, kind)
        with self.lock:
            if self.failed is None and response.status_code == 200:
                self.failed = request.path
                return JsonResponse(
                    {"success": False, "code": "unavailable", "message": "Try again."},
                    status=500,
                )
        return response

    def retried(self, header: str) -> list[str]:
        with self.lock:
            return [path for path, headers in self.requests if header in headers]


@pytest.fixture
def flaky_door(monkeypatch: pytest.MonkeyPatch) -> FlakyDoor:
    door = FlakyDoor(ingest_views._ingest)
    # `ingest` (the routed view, which answers preflights and adds CORS) calls `_ingest`.
    monkeypatch.setattr(ingest_views, "_ingest", door)
    return door


@pytest.fixture
def write_key(world: Any) -> str:
    return services.api_key_create(tenant=world.acme, kind="write", name="shop")[1]


def _recorded(tenant: Any, user_id: str) -> Contact | None:
    contact = Contact.objects.filter(tenant=tenant, user_id=user_id).first()
    if contact is None:
        return None
    types = set(contact.events.values_list("type", flat=True))
    return contact if {"page", "identify", "track", "group"} <= types else None


@pytest.mark.parametrize("delivery", ["standard", "batching"])
@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
def test_it_records_the_browser_sdks_calls_on_one_contact(
    sdk: str,
    delivery: str,
    browser: Browser,
    shop: str,
    live_server: Any,
    world: Any,
    write_key: str,
    flaky_door: FlakyDoor,
    ingest_inline: None,
) -> None:
    user_id = f"{sdk}-{delivery}-ann"
    console: list[str] = []
    with live_context(browser, timeout_ms=60_000) as context:
        page = context.new_page()
        page.on("console", lambda message: console.append(_describe(message)))
        page.goto(f"{shop}/{sdk}.html", wait_until="load")
        arguments = {"writeKey": write_key, "batching": delivery == "batching", "userId": user_id}
        if sdk == "segment":
            host = live_server.url.removeprefix("http://")
            page.evaluate(SEGMENT_CALLS, {**arguments, "apiHost": f"{host}/v1"})
        else:
            page.evaluate(RUDDERSTACK_CALLS, {**arguments, "dataPlaneUrl": live_server.url})
        contact = wait_for(
            lambda: _recorded(world.acme, user_id),
            timeout=RECORDED_WITHIN_SECONDS,
            what=f"{sdk}'s page, identify, track and group calls to be recorded "
            f"(requests: {flaky_door.requests}; console: {console})",
        )
        # The request answered 500 was sent again, with the SDK's retry header, through a
        # preflight that allows it, and what it carried is stored once.
        retried = wait_for(
            lambda: flaky_door.retried(RETRY_HEADER[sdk]),
            timeout=RECORDED_WITHIN_SECONDS,
            what=f"{sdk} to retry {flaky_door.failed} (requests: {flaky_door.requests})",
        )

    assert flaky_door.failed in retried
    if delivery == "batching":
        assert all(path.endswith(("/b", "/batch")) for path in retried)
    assert Contact.objects.filter(tenant=world.acme).count() == 1  # the visitor became Ann
    # What the SDK sent; the product's own facts about her (her lifecycle stage moving as she
    # identifies and signs up, source "lifecycle") are checked apart below.
    events = list(
        Event.objects.filter(tenant=world.acme)
        .exclude(source="lifecycle")
        .values_list("type", "name")
    )
    assert sorted(events) == sorted(
        [
            ("page", "Viewed Pricing Page"),
            ("identify", "Identify"),
            ("track", "Signed Up"),
            ("group", "Group"),
        ]
    ), events  # each once, the retried one included
    contact.refresh_from_db()
    assert (contact.email, contact.first_name) == ("ann@example.com", "Ann")
    assert contact.lifecycle_stage == "onboarding"  # signed up today (audience/stages.py)
    assert {k: v for k, v in contact.attributes.items() if k.startswith("group_")} == {
        "group_id": "acme-inc",
        "group_name": "Acme Inc",
        "group_plan": "enterprise",
    }


def _describe(message: ConsoleMessage) -> str:
    return json.dumps([message.type, message.text[:300]])
