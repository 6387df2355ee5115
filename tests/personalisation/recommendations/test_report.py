"""The recommendation report: served answers, clicks, CTR, and the orders and revenue a click
brought within 7 days, per placement and strategy over 7, 30 or 90 days; the page every member
reads and no other team reaches."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from personalisation.recommendations.selectors import recommendation_report
from tenants.models import Tenant

from .conftest import track

URL = "/t/{}/personalisation/recommendations/"


def served(tenant: Tenant, who: str, placement: str, strategy: str, days_ago: float) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    track(
        tenant,
        who,
        "Recommendation Served",
        at=at,
        recommendation_id=str(uuid.uuid4()),
        placement=placement,
        strategy=strategy,
        skus=["BOOTS", "SOCKS"],
    )


def clicked(
    tenant: Tenant, who: str, placement: str, strategy: str, sku: str, days_ago: float
) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    track(
        tenant,
        who,
        "Recommendation Clicked",
        at=at,
        recommendation_id=str(uuid.uuid4()),
        placement=placement,
        strategy=strategy,
        sku=sku,
        position=1,
    )


def bought(tenant: Tenant, who: str, days_ago: float, *lines: tuple[str, int, float]) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    track(
        tenant,
        who,
        "Order Completed",
        at=at,
        order_id=str(uuid.uuid4()),
        currency="EUR",
        products=[{"sku": s, "quantity": q, "price": p} for s, q, p in lines],
    )


def history(tenant: Tenant) -> None:
    """eve clicked boots on the home page 3 days ago and bought two (and laces) 2 days later,
    having bought a pair before the click too; amy clicked socks on a product page 10 days ago
    and bought them 9 days later (too late); zed clicked a jacket 40 days ago and bought it two
    days after."""
    served(tenant, "eve", "home", "trending", 2)
    served(tenant, "eve", "home", "trending", 3)
    served(tenant, "amy", "home", "trending", 5)
    served(tenant, "amy", "product-page", "similar", 10)
    served(tenant, "amy", "product-page", "similar", 12)
    served(tenant, "zed", "home", "trending", 40)
    bought(tenant, "eve", 4, ("BOOTS", 1, 120))
    clicked(tenant, "eve", "home", "trending", "BOOTS", 3)
    bought(tenant, "eve", 1, ("BOOTS", 2, 120), ("LACES", 1, 5))
    clicked(tenant, "amy", "product-page", "similar", "SOCKS", 10)
    bought(tenant, "amy", 1, ("SOCKS", 1, 15))
    clicked(tenant, "zed", "home", "trending", "JACKET", 40)
    bought(tenant, "zed", 38, ("JACKET", 1, 150))


@pytest.fixture
def reported(world: Any) -> Tenant:
    history(world.acme)
    # globex: a big success of its own that acme's report must not count.
    for _ in range(3):
        served(world.globex, "eve", "home", "trending", 1)
    clicked(world.globex, "eve", "home", "trending", "BOOTS", 1)
    bought(world.globex, "eve", 0.5, ("BOOTS", 10, 999))
    return world.acme


def figures(tenant: Tenant, days: int) -> dict[tuple[str, str], tuple[int, int, int, Decimal]]:
    report = recommendation_report(tenant=tenant, days=days)
    return {
        (r.placement, r.strategy): (r.served, r.clicks, r.orders, r.revenue) for r in report.rows
    }


def test_it_attributes_an_order_to_a_click_on_the_same_product_within_7_days(
    reported: Tenant,
) -> None:
    assert figures(reported, 7) == {("home", "trending"): (3, 1, 1, Decimal(240))}
    assert figures(reported, 30) == {
        ("home", "trending"): (3, 1, 1, Decimal(240)),
        ("product-page", "similar"): (2, 1, 0, Decimal(0)),  # bought 9 days after the click
    }
    assert figures(reported, 90) == {
        ("home", "trending"): (4, 2, 2, Decimal(390)),
        ("product-page", "similar"): (2, 1, 0, Decimal(0)),
    }
    report = recommendation_report(tenant=reported, days=30)
    assert (report.total.served, report.total.clicks, report.total.orders) == (5, 2, 1)
    assert report.total.revenue == 240 and report.currency == "EUR"
    assert report.rows[0].ctr == pytest.approx(100 / 3)


def test_viewers_read_the_report_and_pick_the_period(
    reported: Tenant, world: Any, login: Any
) -> None:
    client = login(world.bob)  # a viewer

    page = client.get(URL.format("acme"))
    week = client.get(URL.format("acme"), {"days": "7"})

    assert page.status_code == 200 and week.status_code == 200
    html = page.content.decode()
    assert "last 30 days" in html
    assert "<code>product-page</code>" in html and "<code>home</code>" in html
    assert "33.3%" in html and "50.0%" in html  # CTR of each row
    assert "240.00 EUR" in html  # the total's revenue
    assert "999" not in html  # globex's
    assert "<code>product-page</code>" not in week.content.decode()


def test_a_bad_period_says_so_and_shows_the_default(
    reported: Tenant, world: Any, login: Any
) -> None:
    response = login(world.bob).get(URL.format("acme"), {"days": "365"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html and "last 30 days" in html


def test_other_teams_and_strangers_cannot_reach_it(
    reported: Tenant, world: Any, login: Any, client: Any
) -> None:
    anonymous = client.get(URL.format("acme"))
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    assert login(world.charlie).get(URL.format("acme")).status_code == 404
    # charlie's own team shows globex's figures only.
    html = login(world.charlie).get(URL.format("globex")).content.decode()
    assert "9,990.00" in html and "240.00" not in html


def test_an_empty_report_says_how_to_start(world: Any, login: Any) -> None:
    response = login(world.alice).get(URL.format("acme"))

    assert response.status_code == 200
    assert "No recommendations served in the last 30 days" in response.content.decode()
