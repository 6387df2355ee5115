"""The demo shop and the browser tracker (static/js/tracker.js) it runs.

First through the Django test client (who may open the shop, and the write key it mints), then in
a real Chromium against the live server: a visitor browses anonymously, signs in and buys, and
Wayfarer ends up with one contact holding the whole history; events queued during a network
outage are delivered once it is over; 5xx and 429 are retried, a refused batch is not; and what is
left when the visitor leaves goes out in a beacon.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from audience.demo_shop import DEMO_KEY_NAME
from audience.inbox import inbox_drain
from audience.models import Contact, Event, Identity, LifecycleStage, Product
from audience.stages import STAGE_CHANGED
from tenants.models import ApiKey, ApiKeyKind, Tenant
from tests.browser import live_context
from tests.factories import PASSWORD, api_key, basic

SHOP = "/t/acme/demo-shop/"
RAW_WRITE_KEY_RE = re.compile(r"wf_wk_[0-9a-f]{12}_")
LOAD_CALL_RE = re.compile(r'\bw\.load\("([^"]+)"')


def raw_keys_in(html: str) -> set[str]:
    """The write keys the page passes to wayfarer.load()."""
    return set(LOAD_CALL_RE.findall(html))


def track_with(client, raw_key: str, message_id: str = "m1"):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/track",
        data=json.dumps({"event": "Product Viewed", "anonymousId": "a1", "messageId": message_id}),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(raw_key),
    )


def products_on(page: str) -> dict[str, dict[str, Any]]:
    """The products the shop's script knows (its json_script), by sku."""
    data = re.search(r'<script id="demo-products" type="application/json">(.*?)</script>', page)
    return json.loads(data[1])


def open_shop(client) -> str:  # type: ignore[no-untyped-def]
    """POST the shop open and return the raw write key embedded in the page."""
    response = client.post(SHOP)
    assert response.status_code == 200
    keys = raw_keys_in(response.content.decode())
    assert len(keys) == 1, keys
    return keys.pop()


# --- Through the Django test client ----------------------------------------------------------


@pytest.mark.django_db
def test_it_explains_the_shop_before_making_a_key(login, world) -> None:
    response = login(world.dave).get(SHOP)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Open the demo shop" in page
    assert '<form method="post">' in page
    assert "/static/js/tracker.js" in page  # the snippet, shown as text
    assert "YOUR_WRITE_KEY" in page
    assert not RAW_WRITE_KEY_RE.search(page)
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_it_shows_the_snippet_that_docs_tracker_md_documents(login, world) -> None:
    page = login(world.dave).get(SHOP).content.decode()

    shown = html.unescape(
        re.search(r'<pre class="snippet"><code>(.*?)</code></pre>', page, re.S)[1]
    )
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tracker.md").read_text()
    documented = re.search(r"```html\n(.*?)\n```", docs, re.S)[1]
    assert shown.replace("http://testserver", "https://wayfarer.example.com") == documented


@pytest.mark.django_db
def test_it_tells_a_viewer_why_they_cannot_open_the_shop(login, world) -> None:
    response = login(world.bob).get(SHOP)

    assert response.status_code == 200
    assert "needs the marketer role" in response.content.decode()
    assert "Open the demo shop" not in response.content.decode()


@pytest.mark.django_db
def test_it_opens_the_shop_with_a_fresh_write_key_that_authenticates(login, world, client) -> None:
    response = login(world.dave).post(SHOP, {"sample_catalog": "1"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    [raw_key] = raw_keys_in(page)
    key = ApiKey.objects.get(tenant=world.acme)
    assert (key.name, key.kind, key.created_by, key.revoked_at) == (
        DEMO_KEY_NAME,
        ApiKeyKind.WRITE,
        world.dave,
        None,
    )
    assert "Trail Tent 2P" in page
    assert 'href="/t/acme/contacts/"' in page
    assert 'id="anonymous-id"' in page
    assert "/static/js/tracker.js" in page

    client.logout()  # ingestion needs no session: the key alone
    assert track_with(client, raw_key).status_code == 200
    inbox_drain()
    assert Event.objects.get(message_id="m1").tenant == world.acme


@pytest.mark.django_db
def test_it_revokes_the_previous_demo_key_when_the_shop_is_opened_again(login, world) -> None:
    other_key, other_raw = api_key(world.acme, kind="write", name="Website")
    _, globex_raw = api_key(world.globex, kind="write", name=DEMO_KEY_NAME)
    client = login(world.dave)

    first = open_shop(client)
    second = open_shop(login(world.alice))

    assert first != second
    assert track_with(client, first, "m1").status_code == 401
    assert track_with(client, second, "m2").status_code == 200
    demo_keys = ApiKey.objects.filter(tenant=world.acme, name=DEMO_KEY_NAME)
    assert demo_keys.count() == 2
    assert demo_keys.filter(revoked_at__isnull=True).count() == 1
    # Only the tenant's own demo keys are revoked.
    assert track_with(client, other_raw, "m3").status_code == 200
    assert track_with(client, globex_raw, "m4").status_code == 200
    other_key.refresh_from_db()
    assert other_key.revoked_at is None


@pytest.mark.django_db
def test_it_sells_the_teams_own_catalog_and_never_another_teams(login, world) -> None:
    Product.objects.create(
        tenant=world.acme, sku="ANVIL-1", name="Acme Anvil", price=Decimal("99.5"), category="Tools"
    )
    Product.objects.create(
        tenant=world.acme, sku="ROPE-9", name="Acme Rope", category="Climbing", in_stock=False
    )
    # Another team's products, one of them under the same sku.
    Product.objects.create(tenant=world.globex, sku="ANVIL-1", name="Globex Anvil", price=1)
    Product.objects.create(tenant=world.globex, sku="GADGET-1", name="Globex Gadget", price=5)
    client = login(world.dave)

    assert "sample_catalog" not in client.get(SHOP).content.decode()
    page = client.post(SHOP, {"sample_catalog": "1"}).content.decode()

    assert "Globex" not in page
    assert products_on(page) == {
        "ANVIL-1": {
            "product_id": "ANVIL-1",
            "sku": "ANVIL-1",
            "name": "Acme Anvil",
            "category": "Tools",
            "price": 99.5,
            "currency": "EUR",
            "url": "",
            "image_url": "",
            "in_stock": True,
        },
        "ROPE-9": {
            "product_id": "ROPE-9",
            "sku": "ROPE-9",
            "name": "Acme Rope",
            "category": "Climbing",
            "price": None,
            "currency": "EUR",
            "url": "",
            "image_url": "",
            "in_stock": False,
        },
    }
    assert "€99.50" in page
    assert "Acme Rope is out of stock" in page
    # A team with a catalog keeps it as it is: no sample products.
    assert set(Product.objects.filter(tenant=world.acme).values_list("sku", flat=True)) == {
        "ANVIL-1",
        "ROPE-9",
    }


@pytest.mark.django_db
def test_it_adds_the_sample_catalog_to_a_team_without_products_when_opened(login, world) -> None:
    client = login(world.dave)
    intro = client.get(SHOP).content.decode()
    assert "catalog has no products yet" in intro
    assert '<input type="hidden" name="sample_catalog" value="1">' in intro

    page = client.post(SHOP, {"sample_catalog": "1"}).content.decode()

    assert "Added the sample outdoor-gear catalog" in page
    catalog = Product.objects.filter(tenant=world.acme)
    assert catalog.count() == 18
    assert not Product.objects.filter(tenant=world.globex).exists()
    shown = products_on(page)
    assert set(shown) == set(catalog.values_list("sku", flat=True))
    tent = catalog.get(sku="TEN-01")
    assert shown["TEN-01"] == {
        "product_id": "TEN-01",
        "sku": "TEN-01",
        "name": tent.name,
        "category": "tents",
        "price": 249.0,
        "currency": "EUR",
        "url": tent.url,
        "image_url": "",
        "in_stock": True,
    }
    # Opening again adds nothing: the catalog is there now.
    page = client.post(SHOP, {"sample_catalog": "1"}).content.decode()
    assert "Added the sample" not in page
    assert catalog.count() == 18


@pytest.mark.django_db
def test_it_shows_an_empty_shop_rather_than_adding_products_unasked(login, world) -> None:
    page = login(world.dave).post(SHOP).content.decode()

    assert "catalog has no products, so there is nothing to sell yet" in page
    assert products_on(page) == {}
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_it_refuses_to_open_the_shop_for_a_viewer(login, world) -> None:
    response = login(world.bob).post(SHOP)

    assert response.status_code == 403
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_to_another_team(login, world, method) -> None:
    response = getattr(login(world.charlie), method)(SHOP)

    assert response.status_code == 404
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_sends_anonymous_visitors_to_sign_in(client, world, method) -> None:
    response = getattr(client, method)(SHOP)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={SHOP}"
    assert not ApiKey.objects.exists()


def test_it_serves_the_tracker_as_a_static_file(client) -> None:
    response = client.get("/static/js/tracker.js")

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    source = b"".join(response.streaming_content).decode()
    assert 'name: "wayfarer.js"' in source
    assert "sendBeacon" in source


# --- In a real browser ---------------------------------------------------------------------

# From the sample catalog (audience.demo.seed_catalog), which opening the shop adds.
TENT = "Trail Tent 2P"  # TEN-01, €249
STOVE = "Gas Stove"
DELIVERED = "every event delivered ✓"
expect.set_options(timeout=10_000)


@pytest.fixture
def requests_made() -> list[Request]:
    return []


@pytest.fixture
def page(
    browser: Browser,
    live_server: Any,
    transactional_db: None,
    world: Any,
    requests_made: list[Request],
    ingest_inline: None,
) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        context.on("request", lambda request: requests_made.append(request))
        yield context.new_page()


def sign_in_and_open_shop(page: Page, live_server: Any) -> str:
    """As dave (marketer): the login page, then the demo shop. Returns the anonymous id."""
    page.goto(SHOP)
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{SHOP}")
    page.get_by_role("button", name="Open the demo shop").click()
    anonymous_id = page.locator("#anonymous-id")
    expect(anonymous_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))  # the tracker is running
    return anonymous_id.inner_text()


def wait_for[T](page: Page, probe: Callable[[], T], *, what: str, timeout: float = 20) -> T:
    """Poll `probe` until it is truthy. Waits through the page, not time.sleep(): Playwright's
    sync API runs route handlers and event listeners only while a Playwright call is waiting."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout:.0f} s waiting for {what}.")
        page.wait_for_timeout(200)


# What Wayfarer records itself as it answers the shop's pages (the recommendations served, the
# searches made, lifecycle stages): not sent by the tracker.
SERVER_EVENTS = {"Recommendation Served", "Products Searched", STAGE_CHANGED}


def tracked_events() -> Any:
    """The events the tracker sent."""
    return Event.objects.exclude(name__in=SERVER_EVENTS)


def event_names(tenant: Tenant) -> set[str]:
    return set(tracked_events().filter(tenant=tenant).values_list("name", flat=True))


def outbox_size(page: Page) -> int:
    return int(page.evaluate("JSON.parse(localStorage.getItem('wayfarer.outbox') || '[]').length"))


def assert_only_live_server(requests_made: list[Request], live_server: Any) -> None:
    server = urlsplit(live_server.url).netloc
    elsewhere = [r.url for r in requests_made if urlsplit(r.url).netloc != server]
    assert requests_made and not elsewhere, f"requests left the live server: {elsewhere}"


@pytest.mark.e2e
def test_it_turns_a_browsing_visitor_into_one_customer_with_the_whole_history(
    page: Page, live_server: Any, world: Any, requests_made: list[Request]
) -> None:
    anonymous_id = sign_in_and_open_shop(page, live_server)

    page.get_by_role("button", name=f"View {TENT}").click()
    product = page.get_by_role("dialog", name=TENT)
    product.get_by_role("button", name="Add to wishlist").click()
    product.get_by_role("button", name="Add to cart").click()
    product.get_by_role("button", name="Close").click()
    page.get_by_label("Search products").fill("stove")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("region", name="Search results")
    expect(results.get_by_text(re.compile(r"^\d+ results? for “stove”$"))).to_be_visible()
    expect(results.get_by_role("link", name=re.compile(STOVE))).to_be_visible()
    page.get_by_role("button", name=f"Add {STOVE} to cart").click()
    page.get_by_role("button", name=f"Remove {STOVE} from cart").click()
    page.get_by_label("Email").fill("Mara@Example.com")
    page.get_by_label("First name").fill("Mara")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user-id")).to_have_text("mara@example.com")
    page.get_by_role("button", name="Check out").click()
    page.get_by_role("dialog", name="Checkout").get_by_role("button", name="Buy now").click()
    expect(page.get_by_text(re.compile(r"Thank you! Order DEMO-\w+ is placed"))).to_be_visible()

    expected = {
        "Page Viewed",
        "Product Viewed",
        "Product Added to Wishlist",
        "Product Added",
        "Product Removed",
        "Identify",
        "Checkout Started",
        "Order Completed",
    }
    wait_for(
        page, lambda: expected <= event_names(world.acme), what=f"the events {sorted(expected)}"
    )
    expect(page.locator("#delivery-status")).to_have_text(DELIVERED)
    assert outbox_size(page) == 0

    contact = Contact.objects.get(tenant=world.acme)  # exactly one: anonymous history merged
    assert (contact.user_id, contact.email, contact.first_name) == (
        "mara@example.com",
        "mara@example.com",
        "Mara",
    )
    assert contact.cart == []  # emptied by Order Completed
    assert contact.wishlist == ["TEN-01"]
    assert contact.recently_viewed == ["TEN-01"]
    # A first order just now (audience/stages.py), recomputed after the order's batch committed.
    assert contact.lifecycle_stage == LifecycleStage.ONBOARDING
    moves = Event.objects.filter(tenant=world.acme, name=STAGE_CHANGED).order_by("id")
    assert moves.last().properties["to"] == "onboarding"  # type: ignore[union-attr]
    assert set(
        Identity.objects.filter(tenant=world.acme).values_list("kind", "value", "contact")
    ) == {
        (Identity.Kind.ANONYMOUS_ID, anonymous_id, contact.pk),
        (Identity.Kind.USER_ID, "mara@example.com", contact.pk),
    }
    # In the order they were stored: the tracker sends one batch at a time, oldest first.
    events = list(tracked_events().filter(tenant=world.acme).order_by("id"))
    assert {e.contact_id for e in events} == {contact.pk}
    names = [e.name for e in events]
    assert names[0] == "Page Viewed"
    assert names.index("Product Added") < names.index("Identify") < names.index("Order Completed")
    order = next(e for e in events if e.name == "Order Completed")
    assert order.properties["total"] == 249
    assert [p["sku"] for p in order.properties["products"]] == ["TEN-01"]
    assert set(order.properties["products"][0].items()) >= {
        ("product_id", "TEN-01"),
        ("name", TENT),
        ("price", 249),
        ("category", "tents"),
    }
    assert order.context["library"]["name"] == "wayfarer.js"
    assert order.context["page"]["path"] == SHOP
    assert order.context["userAgent"]
    # The search was Wayfarer's: it recorded what was asked and found, for this visitor.
    searched = Event.objects.get(tenant=world.acme, name="Products Searched")
    assert (searched.contact_id, searched.properties["query"]) == (contact.pk, "stove")
    assert searched.properties["result_count"] >= 1

    batches = [r for r in requests_made if urlsplit(r.url).path == "/v1/batch"]
    assert batches and all(r.method == "POST" for r in batches)
    [raw_key] = raw_keys_in(page.content())
    assert {r.headers.get("authorization") for r in batches} == {basic(raw_key)}
    assert_only_live_server(requests_made, live_server)


@pytest.mark.e2e
def test_it_delivers_events_recorded_during_a_network_outage_once_it_is_over(
    page: Page, live_server: Any, world: Any, requests_made: list[Request]
) -> None:
    refused: list[list[str]] = []  # the messageIds of each batch the "network" lost

    def lose(route: Route) -> None:
        refused.append([m["messageId"] for m in json.loads(route.request.post_data)["batch"]])
        route.abort("internetdisconnected")

    page.route("**/v1/batch", lose)
    sign_in_and_open_shop(page, live_server)
    page.get_by_role("button", name=f"View {TENT}").click()
    page.get_by_role("dialog", name=TENT).get_by_role("button", name="Add to cart").click()

    wait_for(page, lambda: len(refused) >= 2, what="two failed sends")
    expect(page.locator("#delivery-status")).to_contain_text("network error")
    assert not tracked_events().exists()
    assert outbox_size(page) == 3, "the unsent messages are not kept in localStorage"

    page.unroute("**/v1/batch")

    expected = {"Page Viewed", "Product Viewed", "Product Added"}
    wait_for(
        page, lambda: event_names(world.acme) == expected, what=f"the events {sorted(expected)}"
    )
    expect(page.locator("#delivery-status")).to_have_text(DELIVERED)
    assert outbox_size(page) == 0
    # The very messages that were lost, each stored once.
    lost = {message_id for batch in refused for message_id in batch}
    assert set(tracked_events().values_list("message_id", flat=True)) == lost
    assert len(lost) == 3
    assert_only_live_server(requests_made, live_server)


class ScriptedServer:
    """Answers /v1/batch from a script: a status is answered by the test, None lets the live
    server answer. Records what each request carried."""

    def __init__(self, page: Page, script: list[int | None]) -> None:
        self.script = script
        self.seen: list[tuple[int | None, list[str]]] = []  # (scripted status, event names)
        page.route("**/v1/batch", self.answer)

    def answer(self, route: Route) -> None:
        batch = json.loads(route.request.post_data or "{}")["batch"]
        status = self.script.pop(0) if self.script else None
        self.seen.append((status, [m.get("event", m["type"]) for m in batch]))
        if status is None:
            route.continue_()
        elif status == 400:  # Wayfarer's answer to a bad message, naming it
            route.fulfill(status=400, json={"success": False, "code": "invalid", "index": 0})
        else:
            route.fulfill(status=status, headers={"Retry-After": "1"}, json={"success": False})


@pytest.mark.e2e
def test_it_retries_server_errors_and_rate_limits_but_not_refused_messages(
    page: Page, live_server: Any, world: Any
) -> None:
    server = ScriptedServer(page, [503, 429])  # then the real server
    sign_in_and_open_shop(page, live_server)
    wait_for(page, lambda: event_names(world.acme) == {"Page Viewed"}, what="the page view")
    assert server.seen == [(503, ["page"]), (429, ["page"]), (None, ["page"])]

    # A 400 naming one message of a batch drops that message only; the rest go again at once.
    page.unroute("**/v1/batch")
    server = ScriptedServer(page, [400])
    page.evaluate(  # two clicks in one go, so that both land in one batch
        """(tent) => {
          document.querySelector(`[aria-label="Add ${tent} to cart"]`).click();
          document.querySelector(`[aria-label="Add ${tent} to wishlist"]`).click();
        }""",
        TENT,
    )
    wait_for(page, lambda: "Product Added to Wishlist" in event_names(world.acme), what="wishlist")
    assert server.seen == [
        (400, ["Product Added", "Product Added to Wishlist"]),
        (None, ["Product Added to Wishlist"]),
    ]

    # Any other 4xx (here: a revoked key) would fail every time: dropped, not retried.
    page.unroute("**/v1/batch")
    server = ScriptedServer(page, [401, 401, 401])
    page.get_by_role("button", name=f"Add {STOVE} to cart").click()
    expect(page.locator("#delivery-status")).to_have_text("Wayfarer refused 1 event(s) (HTTP 401)")
    page.wait_for_timeout(3_000)  # longer than a first retry would wait
    assert server.seen == [(401, ["Product Added"])], "a 401 was retried"
    assert outbox_size(page) == 0
    assert event_names(world.acme) == {"Page Viewed", "Product Added to Wishlist"}


@pytest.mark.e2e
def test_it_hands_what_is_left_to_a_beacon_when_the_visitor_leaves(
    page: Page, live_server: Any, world: Any
) -> None:
    # Every fetch fails, and the next page has no tracker: only a beacon can deliver. Playwright
    # does not see requests a page makes as it unloads, so the page records its own beacons.
    page.route("**/v1/batch", lambda route: route.abort("internetdisconnected"))
    sign_in_and_open_shop(page, live_server)
    page.evaluate(
        """() => {
          const send = navigator.sendBeacon.bind(navigator);
          navigator.sendBeacon = (url, body) => {
            const seen = JSON.parse(sessionStorage.getItem("beacons") || "[]");
            sessionStorage.setItem("beacons", JSON.stringify([...seen, {url, body}]));
            return send(url, body);
          };
        }"""
    )
    page.get_by_role("button", name=f"Add {TENT} to cart").click()
    wait_for(page, lambda: outbox_size(page) == 2, what="two messages in the outbox")

    page.goto("/t/acme/")  # pagehide: the tracker hands its outbox to navigator.sendBeacon

    expected = {"Page Viewed", "Product Added"}
    wait_for(page, lambda: event_names(world.acme) == expected, what="the beaconed events")
    [beacon] = page.evaluate("JSON.parse(sessionStorage.getItem('beacons'))")
    assert beacon["url"] == f"{live_server.url}/v1/batch"
    body = json.loads(beacon["body"])  # a string: sent as text/plain, so no CORS preflight
    assert body["writeKey"].startswith("wf_wk_")  # beacons cannot carry an Authorization header
    assert [m["type"] for m in body["batch"]] == ["page", "track"]
