"""The Products pages (issue 18 item 10): the catalog list with search by name, SKU or category,
the in-stock filter, prices with thousands separators and currency and keyset pages; a product's
page with its fields, units sold and revenue over 30 and 90 days from the order ledger, how many
contacts have it in cart and wishlist and its latest orders. Two teams throughout: the other
team's products, orders and contacts never count, and its product's address is not found."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.utils.timezone import now

from audience.models import Product
from audience.orders import ORDER_EVENT
from audience.segment_spec import parse_call
from audience.services import calls_record

pytestmark = pytest.mark.django_db

LIST = "/t/acme/products/"


def detail(product: Product) -> str:
    return f"/t/{product.tenant.slug}/products/{product.public_id}/"


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def listed(html: str) -> list[str]:
    """The product names in the list's table, in order."""
    return [
        unescape(n) for n in re.findall(r'<a href="/t/acme/products/[0-9a-f-]+/">([^<]+)</a>', html)
    ]


def product(tenant: Any, sku: str, name: str, **fields: Any) -> Product:
    return Product.objects.create(tenant=tenant, sku=sku, name=name, **fields)


def track(tenant: Any, n: str, user: str, event: str, days_ago: float, **props: Any) -> None:
    when = (now() - timedelta(days=days_ago)).isoformat()
    call = {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": n,
        "timestamp": when,
        "properties": props,
    }
    calls_record(tenant=tenant, calls=[parse_call(call)])


def order(tenant: Any, n: str, user: str, days_ago: float, *lines: tuple[str, int, str]) -> None:
    products = [{"sku": sku, "quantity": q, "price": p} for sku, q, p in lines]
    total = sum(Decimal(p) * q for _, q, p in lines)
    track(
        tenant,
        n,
        user,
        ORDER_EVENT,
        days_ago,
        total=float(total),
        currency="EUR",
        products=products,
    )


@pytest.fixture
def catalog(world: Any) -> dict[str, Product]:
    return {
        "mug": product(
            world.acme, "MUG-1", "Blue Mug", category="Kitchen", price=Decimal("1234.50")
        ),
        "kettle": product(
            world.acme,
            "KET-1",
            "Red Kettle",
            category="Kitchen",
            price=Decimal("49"),
            in_stock=False,
        ),
        "shoe": product(world.acme, "SHOE-9", "Trail Shoe", category="Outdoor", price=None),
        "mug10": product(world.acme, "MUG-10", "Big Mug", category="Kitchen", price=Decimal("9")),
        "globex": product(world.globex, "MUG-1", "Globex Mug", category="Kitchen"),
    }


def test_list_shows_the_catalog_with_prices(world: Any, login: Any, catalog: Any) -> None:
    html = login(world.bob).get(LIST).content.decode()  # a viewer reads it
    assert sorted(listed(html)) == ["Big Mug", "Blue Mug", "Red Kettle", "Trail Shoe"]
    page = text(html)
    assert "1,234.50 EUR" in page
    assert "Out of stock" in page
    assert "Globex Mug" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=blue", ["Blue Mug"]),  # name, any case
        ("q=shoe-9", ["Trail Shoe"]),  # SKU
        ("q=kitchen", ["Big Mug", "Blue Mug", "Red Kettle"]),  # category
        ("q=mug", ["Big Mug", "Blue Mug"]),  # never the other team's mug
        ("stock=out", ["Red Kettle"]),
        ("stock=in&q=kitchen", ["Big Mug", "Blue Mug"]),
        ("q=nothing-like-it", []),
    ],
)
def test_search_and_stock_filter(
    world: Any, login: Any, catalog: Any, query: str, expected: list[str]
) -> None:
    html = login(world.dave).get(f"{LIST}?{query}").content.decode()
    assert sorted(listed(html)) == expected
    if not expected:
        assert "No products match" in html


def test_empty_catalog_says_how_products_arrive(world: Any, login: Any) -> None:
    html = login(world.dave).get(LIST).content.decode()
    assert "No products yet" in html


def test_pages_walk_the_whole_catalog_once(world: Any, login: Any) -> None:
    start = now() - timedelta(days=1)
    for i in range(57):
        Product.objects.create(
            tenant=world.acme,
            sku=f"P-{i:03d}",
            name=f"Item {i:03d}",
            created_at=start + timedelta(minutes=i),
        )
    product(world.globex, "P-999", "Globex item")
    client = login(world.dave)
    html = client.get(f"{LIST}?q=item").content.decode()
    first = listed(html)
    assert len(first) == 50 and first[0] == "Item 056"  # newest first
    cursor = re.search(r'href="\?q=item&amp;after=([^"]+)"', html)
    assert cursor is not None
    second = listed(client.get(f"{LIST}?q=item&after={unescape(cursor.group(1))}").content.decode())
    assert len(second) == 7
    assert sorted(first + second) == [f"Item {i:03d}" for i in range(57)]


@pytest.fixture
def history(world: Any, catalog: Any) -> None:
    acme, globex = world.acme, world.globex
    for user, traits in (
        ("ann", {"firstName": "Ann", "lastName": "Lee"}),
        ("bea", {"email": "bea@example.com"}),
    ):
        call = {"type": "identify", "userId": user, "messageId": f"id-{user}", "traits": traits}
        calls_record(tenant=acme, calls=[parse_call(call)])
    order(acme, "o1", "ann", 10, ("MUG-1", 2, "1234.50"), ("KET-1", 1, "49"))
    order(acme, "o2", "bea", 45, ("MUG-1", 3, "1000"))
    order(acme, "o3", "ann", 120, ("MUG-1", 7, "1234.50"))  # before the 90 days
    order(acme, "o4", "cid", 5, ("KET-1", 1, "49"))
    order(acme, "o5", "cid", 3, ("MUG-10", 4, "9"))  # a SKU that merely starts alike
    order(globex, "g1", "gus", 2, ("MUG-1", 100, "1"))  # the other team's
    track(acme, "c1", "ann", "Product Added", 1, sku="MUG-1", quantity=1, price=1234.5)
    track(acme, "c2", "bea", "Product Added", 1, sku="MUG-10", quantity=1)
    track(acme, "w1", "bea", "Product Added to Wishlist", 1, sku="MUG-1")
    track(acme, "w2", "cid", "Product Added to Wishlist", 1, sku="KET-1")
    track(globex, "g2", "gus", "Product Added", 1, sku="MUG-1")
    track(globex, "g3", "gus", "Product Added to Wishlist", 1, sku="MUG-1")


def sales_row(html: str, days: int) -> list[str]:
    row = re.search(rf'<tr data-days="{days}">(.*?)</tr>', html, re.S)
    assert row is not None
    return [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def test_detail_sums_the_order_ledger(world: Any, login: Any, catalog: Any, history: None) -> None:
    html = login(world.bob).get(detail(catalog["mug"])).content.decode()
    page = text(html)
    assert "Blue Mug" in page and "MUG-1" in page and "Kitchen" in page
    assert "1,234.50 EUR" in text(re.search(r'id="product-price">(.*?)</dd>', html).group(1))
    # 30 days: o1 only (2 at 1,234.50); 90 days: o1 and o2 (+ 3 at 1,000).
    assert sales_row(html, 30) == ["Last 30 days", "1", "2", "2,469.00 EUR"]
    assert sales_row(html, 90) == ["Last 90 days", "2", "5", "5,469.00 EUR"]
    assert text(re.search(r'id="in-cart">(.*?)</dd>', html).group(1)) == "1 contact"
    assert text(re.search(r'id="in-wishlist">(.*?)</dd>', html).group(1)) == "1 contact"
    latest = re.search(r'<table id="latest-orders">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", latest.split("<tbody>")[1], re.S)
    assert len(rows) == 2  # o1 then o2; not o3 (too old), o4/o5 (other products), globex's
    assert "Ann Lee 2 1,234.50 EUR 2,518.00 EUR" in text(rows[0])
    assert "bea@example.com 3 1,000.00 EUR 3,000.00 EUR" in text(rows[1])


def test_detail_never_reads_the_events_table(
    world: Any, login: Any, catalog: Any, history: None
) -> None:
    """The events table is partitioned and huge: the page reads the order ledger, the contacts'
    carts and wishlists, and a fixed number of queries whatever the history."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(world.dave)
    client.get(detail(catalog["mug"]))  # warm the session and membership caches
    with CaptureQueriesContext(connection) as queries:
        assert client.get(detail(catalog["mug"])).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [q for q in sql if re.search(r'"audience_event"', q)]
    assert any('"audience_order"' in q for q in sql)
    count = len(sql)
    order(world.acme, "o9", "dan", 1, ("MUG-1", 1, "5"))
    track(world.acme, "c9", "dan", "Product Added", 1, sku="MUG-1")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(detail(catalog["mug"])).content.decode()
    assert len(queries.captured_queries) == count
    assert sales_row(html, 30)[1:3] == ["2", "3"]


def test_detail_of_a_product_nobody_bought(
    world: Any, login: Any, catalog: Any, history: None
) -> None:
    html = login(world.dave).get(detail(catalog["shoe"])).content.decode()
    assert sales_row(html, 90) == ["Last 90 days", "0", "0", "—"]
    assert "No order in the last 90 days holds this product." in html
    assert text(re.search(r'id="in-cart">(.*?)</dd>', html).group(1)) == "0 contacts"


def test_other_teams_product_is_not_found(world: Any, login: Any, catalog: Any) -> None:
    client = login(world.alice)
    assert client.get(f"/t/acme/products/{catalog['globex'].public_id}/").status_code == 404
    assert login(world.charlie).get(detail(catalog["mug"])).status_code == 404
    assert client.get("/t/acme/products/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert login(world.alice).get(detail(catalog["mug"])).status_code == 200


# --- in a real browser: both pages at 1366 px and on a 390 px phone ---------------------------

NOTES_SHOTS = Path("/work/wt/_notes/shots")
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


def shoot(page: Any, name: str, shots: Path) -> None:
    """Screenshots at both widths; nothing wider than a phone's screen."""
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{name} at {width}px is {wide}px wide"
        page.screenshot(path=str(shots / f"products-{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_products_pages_in_a_browser(
    browser: Any, live_server: Any, world: Any, catalog: Any, history: None, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser import live_context
    from tests.factories import PASSWORD

    shots = NOTES_SHOTS if NOTES_SHOTS.is_dir() else tmp_path
    product(
        world.acme,
        "LONG-SKU-WITH-NO-BREAKS-0123456789",
        "A product with a rather long name that has to wrap on a phone screen",
        category="Garden furniture and outdoor living",
        price=Decimal("1234567.89"),
        url="https://shop.example.com/products/a-very-long-address-without-any-breaks-at-all-0123456789",
    )
    with live_context(browser, live_server.url, timeout_ms=60_000) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill("bob@example.com")  # a viewer reads the catalog
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        page.goto("/t/acme/products/")
        expect(page.get_by_role("heading", name="Products")).to_be_visible()
        expect(page.get_by_text("1,234,567.89 EUR")).to_be_visible()
        shoot(page, "list", shots)
        page.get_by_label("Search").fill("kitchen")  # htmx swaps the results as one types
        expect(page.get_by_role("link", name="Trail Shoe")).to_have_count(0)
        expect(page.get_by_role("link", name="Red Kettle")).to_be_visible()
        page.get_by_label("Stock").select_option("in")
        expect(page.get_by_role("link", name="Red Kettle")).to_have_count(0)
        shoot(page, "list-filtered", shots)
        page.get_by_label("Search").fill("no such thing")
        expect(page.get_by_text("No products match")).to_be_visible()
        shoot(page, "list-empty", shots)
        page.goto(f"/t/acme/products/{catalog['mug'].public_id}/")
        expect(page.get_by_role("heading", name="Blue Mug")).to_be_visible()
        expect(page.get_by_text("5,469.00 EUR")).to_be_visible()
        shoot(page, "detail", shots)
        long = Product.objects.get(tenant=world.acme, sku__startswith="LONG")
        page.goto(f"/t/acme/products/{long.public_id}/")
        shoot(page, "detail-long", shots)
        assert errors == [], f"console errors: {errors}"
