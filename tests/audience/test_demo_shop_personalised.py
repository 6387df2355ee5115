"""The demo shop's onsite personalisation (issue 16): what ops/demo.py seeds (the home banner with
a variant per browsed category, the NPS survey, search synonyms), the shop's pages that show it,
and, in a real Chromium against the live server, the tracker's half: the banner follows the
category the visitor browsed on the very next page, a misspelt search finds the product, what a
customer bought is never recommended to them, and the embedded survey records one answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from audience.demo import seed_catalog
from audience.demo_shop import DEMO_KEY_NAME
from audience.inbox import inbox_drain
from audience.models import Contact, Event, Product
from audience.segment_spec import parse_call
from audience.services import calls_record
from ops.demo import BANNER_VARIANTS, HOME_BANNER, SYNONYMS, seed_demo, seed_personalisation
from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.services import placements_decide, variant_update
from personalisation.search.models import Synonym
from personalisation.search.services import synonyms_set
from personalisation.surveys.models import Survey, SurveyAnswer
from segments.models import Segment
from tenants.models import ApiKey
from tests.audience.test_demo_shop import (
    RAW_WRITE_KEY_RE,
    SHOP,
    open_shop,
    raw_keys_in,
    sign_in_and_open_shop,
    wait_for,
)
from tests.browser import live_context

expect.set_options(timeout=10_000)


def client_of(user: Any) -> Client:
    """A browser of its own (its own session), signed in as `user`."""
    client = Client()
    client.force_login(user)
    return client


def shop_page(client, query: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"{SHOP}?{query}")
    assert response.status_code == 200
    return response.content.decode()


# --- The seed --------------------------------------------------------------------------------


def viewed(tenant: Any, anonymous_id: str, event: str, category: str) -> Contact:
    """A visitor's event, recorded as ingestion records it."""
    call = parse_call(
        {
            "type": "track",
            "event": event,
            "anonymousId": anonymous_id,
            "messageId": f"{anonymous_id}-{event}",
            "properties": {"category": category},
        }
    )
    calls_record(tenant=tenant, calls=[call], source="test")
    return Contact.objects.get(tenant=tenant, identities__value=anonymous_id)


@pytest.mark.django_db
def test_the_seed_gives_the_home_banner_a_variant_per_browsed_category(world) -> None:
    seed_personalisation(tenant=world.acme)

    placement = Placement.objects.get(tenant=world.acme, key=HOME_BANNER)
    variants = list(PlacementVariant.objects.filter(placement=placement).order_by("position"))
    assert [v.name for v in variants] == [
        "Browsed tents",
        "Browsed footwear",
        "Browsed cooking",
        "Everyone else",
    ]
    assert [v.segment.name if v.segment else None for v in variants] == [
        "Browsed tents in the last 30 days",
        "Browsed footwear in the last 30 days",
        "Browsed cooking in the last 30 days",
        None,
    ]
    assert variants[1].link_url == "/t/acme/demo-shop/?category=footwear"
    # Who sees what: a visitor who looked at boots, one who opened the cooking list, a stranger.
    boots = viewed(world.acme, "anon-boots", "Product Viewed", "footwear")
    cook = viewed(world.acme, "anon-cook", "Product List Viewed", "cooking")
    shown = {
        who: placements_decide(tenant=world.acme, keys=[HOME_BANNER], contact=contact)[HOME_BANNER]
        for who, contact in (("boots", boots), ("cook", cook), ("stranger", None))
    }
    assert {who: v.title if v else None for who, v in shown.items()} == {
        "boots": BANNER_VARIANTS["footwear"][0],
        "cook": BANNER_VARIANTS["cooking"][0],
        "stranger": "Gear for every trail",
    }
    assert {s.term: s.alternatives for s in Synonym.objects.filter(tenant=world.acme)} == SYNONYMS
    survey = Survey.objects.get(tenant=world.acme)
    assert (survey.kind, survey.active) == ("nps", True)
    assert survey.question == "How likely are you to recommend Acme to a friend?"
    # Another team gets none of it.
    assert not Placement.objects.filter(tenant=world.globex).exists()
    assert not Survey.objects.filter(tenant=world.globex).exists()
    assert not Synonym.objects.filter(tenant=world.globex).exists()


@pytest.mark.django_db
def test_the_seed_adds_each_part_once_and_keeps_the_teams_own_changes(world) -> None:
    seed_personalisation(tenant=world.acme)
    default = PlacementVariant.objects.get(tenant=world.acme, name="Everyone else")
    variant_update(tenant=world.acme, variant=default, title="Winter sale")
    synonyms_set(tenant=world.acme, term="sneakers", alternatives=["trainers"])

    seed_personalisation(tenant=world.acme)

    assert Placement.objects.filter(tenant=world.acme).count() == 1
    assert PlacementVariant.objects.filter(tenant=world.acme).count() == 4
    assert Survey.objects.filter(tenant=world.acme).count() == 1
    assert Segment.objects.filter(tenant=world.acme, name__startswith="Browsed").count() == 3
    assert PlacementVariant.objects.get(pk=default.pk).title == "Winter sale"
    assert Synonym.objects.get(tenant=world.acme, term="sneakers").alternatives == ["trainers"]
    assert Synonym.objects.filter(tenant=world.acme).count() == len(SYNONYMS)


@pytest.mark.django_db
def test_make_runs_demo_team_gets_the_banner_and_the_survey() -> None:
    tenant = seed_demo()
    seed_demo()  # `make run` seeds on every start

    assert Placement.objects.filter(tenant=tenant, key=HOME_BANNER).count() == 1
    assert PlacementVariant.objects.filter(tenant=tenant).count() == 4
    assert Survey.objects.filter(tenant=tenant, kind="nps").count() == 1


# --- The shop's pages, through the Django test client ----------------------------------------


@pytest.mark.django_db
def test_the_home_page_carries_the_banner_picks_search_and_survey(login, world) -> None:
    seed_catalog(tenant=world.acme)
    seed_personalisation(tenant=world.acme)
    survey = Survey.objects.get(tenant=world.acme)

    page = login(world.dave).post(SHOP).content.decode()

    assert 'data-wayfarer-placement="home-banner"' in page
    assert "Welcome to Acme" in page  # what shows until (or unless) Wayfarer has a variant
    assert 'data-wayfarer-recommendations="home"' in page
    assert 'data-wayfarer-search="search-results"' in page
    assert 'data-product-url="/t/acme/demo-shop/?product={sku}"' in page
    assert f'data-wayfarer-survey="{survey.public_id}"' in page
    for category in ("tents", "footwear", "cooking"):
        assert f'href="/t/acme/demo-shop/?category={category}"' in page


@pytest.mark.django_db
def test_the_home_page_embeds_no_survey_without_one_and_never_another_teams(login, world) -> None:
    seed_catalog(tenant=world.acme)
    seed_personalisation(tenant=world.globex)  # globex has an NPS survey; acme has none

    page = login(world.dave).post(SHOP).content.decode()

    assert "data-wayfarer-survey" not in page
    assert str(Survey.objects.get(tenant=world.globex).public_id) not in page


@pytest.mark.django_db
def test_the_shop_pages_reuse_the_key_the_session_opened_the_shop_with(login, world) -> None:
    seed_catalog(tenant=world.acme)
    client = login(world.dave)
    key = open_shop(client)

    home = shop_page(client, "page=home")
    tents = shop_page(client, "category=tents")
    product = shop_page(client, "product=TEN-02")

    assert raw_keys_in(home) == raw_keys_in(tents) == raw_keys_in(product) == {key}
    assert ApiKey.objects.filter(tenant=world.acme, name=DEMO_KEY_NAME).count() == 1
    # A category page lists that category only, and says which page it is.
    assert re.findall(r'class="product-card" data-sku="([^"]+)"', tents) == [
        "TEN-03",
        "TEN-02",
        "TEN-01",
    ]
    assert 'aria-current="page">Tents</a>' in tents
    assert 'data-page="category" data-category="tents"' in tents
    # A product page: the product, and two recommendation strategies seeded with it.
    assert '<h1 id="product-name">Summit Tent 3P</h1>' in product
    assert re.search(r'data-strategy="similar" data-product="TEN-02"', product)
    assert re.search(r'data-strategy="bought_together" data-product="TEN-02"', product)
    assert "data-wayfarer-placement" not in product  # the banner is the home page's


@pytest.mark.django_db
def test_an_empty_category_and_an_unknown_product(login, world) -> None:
    seed_catalog(tenant=world.acme)
    Product.objects.create(tenant=world.globex, sku="GLX-1", name="Globex Gadget", price=5)
    client = login(world.dave)
    open_shop(client)

    assert "No products in “kayaks”" in shop_page(client, "category=kayaks")
    assert client.get(f"{SHOP}?product=NOPE-1").status_code == 404
    assert client.get(f"{SHOP}?product=GLX-1").status_code == 404  # another team's sku


@pytest.mark.django_db
def test_the_shop_pages_explain_instead_when_the_key_is_gone(login, world) -> None:
    seed_catalog(tenant=world.acme)
    dave = client_of(world.dave)
    open_shop(dave)
    # Alice opens the shop too: dave's key is revoked, so his pages cannot run the tracker.
    open_shop(client_of(world.alice))

    page = shop_page(dave, "page=home")

    assert "needs the demo shop to be open in your session" in page
    assert "Open the demo shop" in page
    assert not RAW_WRITE_KEY_RE.search(page)


@pytest.mark.django_db
def test_a_session_that_never_opened_the_shop_gets_no_key(world) -> None:
    seed_catalog(tenant=world.acme)
    open_shop(client_of(world.dave))

    for user in (world.dave, world.alice, world.bob):  # dave elsewhere, a marketer, a viewer
        page = shop_page(client_of(user), "category=tents")
        assert not RAW_WRITE_KEY_RE.search(page)
        assert "needs the demo shop to be open" in page


@pytest.mark.django_db
def test_another_team_cannot_reach_the_shop_pages(world) -> None:
    seed_catalog(tenant=world.acme)
    open_shop(client_of(world.dave))
    charlie = client_of(world.charlie)

    for query in ("page=home", "category=tents", "product=TEN-01"):
        assert charlie.get(f"{SHOP}?{query}").status_code == 404


# --- In a real browser -----------------------------------------------------------------------

BANNER = '[data-wayfarer-placement="home-banner"]'
SCREENS = Path(settings.VAR_DIR) / "screens" / "demo-shop"


@pytest.fixture
def acme_shop(world: Any) -> Any:
    seed_catalog(tenant=world.acme)
    Product.objects.create(
        tenant=world.acme,
        sku="FOO-09",
        name="Canvas Sneakers",
        category="footwear",
        price=Decimal("79.00"),
        currency="EUR",
        url="https://demo-shop.example/p/footwear/9",
    )
    seed_personalisation(tenant=world.acme)
    return world


@pytest.fixture
def browser_page(browser: Browser, live_server: Any, transactional_db: None) -> Iterator[Page]:
    with live_context(browser, live_server.url) as context:
        yield context.new_page()


def banner_title(page: Page) -> str:
    banner = page.locator(BANNER)
    expect(banner).to_have_attribute("data-wayfarer-state", "filled")
    return banner.locator(".wayfarer-placement-title").inner_text()


def tracked(tenant: Any, name: str) -> list[Event]:
    inbox_drain()  # the ingest worker's job: nothing runs it in these tests
    return list(Event.objects.filter(tenant=tenant, name=name).order_by("id"))


@pytest.mark.e2e
def test_the_banner_follows_the_category_browsed_on_the_very_next_page(
    browser_page: Page, live_server: Any, acme_shop: Any
) -> None:
    page = browser_page
    # What the marketer wrote is text, never markup, on the shop's page.
    default = PlacementVariant.objects.get(tenant=acme_shop.acme, name="Everyone else")
    variant_update(tenant=acme_shop.acme, variant=default, body='New <img src=x id="injected">')
    sign_in_and_open_shop(page, live_server)
    assert banner_title(page) == "Gear for every trail"
    expect(page.locator(BANNER)).to_contain_text('New <img src=x id="injected">')
    expect(page.locator("#injected")).to_have_count(0)

    # No ingest worker runs here: the footwear page's events are still in the inbox (or in the
    # tracker's outbox) when the home page asks; the tracker and Wayfarer settle them first.
    page.get_by_role("navigation", name="Shop").get_by_role("link", name="Footwear").click()
    expect(page.get_by_role("heading", name="Footwear", level=2)).to_be_visible()
    page.get_by_role("navigation", name="Shop").get_by_role("link", name="Home").click()

    assert banner_title(page) == BANNER_VARIANTS["footwear"][0]
    link = page.locator(BANNER).get_by_role("link", name="See the footwear")
    link.click()
    expect(page).to_have_url(f"{live_server.url}{SHOP}?category=footwear")

    viewed = tracked(acme_shop.acme, "Placement Viewed")
    assert [e.properties["variant_name"] for e in viewed] == ["Everyone else", "Browsed footwear"]
    variant = PlacementVariant.objects.get(tenant=acme_shop.acme, name="Browsed footwear")
    assert viewed[1].properties == {
        "placement": HOME_BANNER,
        "variant": str(variant.public_id),
        "variant_name": "Browsed footwear",
    }
    wait_for(page, lambda: tracked(acme_shop.acme, "Placement Clicked"), what="the click")
    [clicked] = tracked(acme_shop.acme, "Placement Clicked")
    assert clicked.properties["url"] == f"{live_server.url}{SHOP}?category=footwear"
    assert clicked.contact_id == viewed[1].contact_id


@pytest.mark.e2e
def test_a_misspelt_search_finds_the_product_and_its_click_is_recorded(
    browser_page: Page, live_server: Any, acme_shop: Any, ingest_inline: None
) -> None:
    page = browser_page
    sign_in_and_open_shop(page, live_server)

    page.get_by_label("Search products").fill("sneekers")
    page.get_by_role("button", name="Search", exact=True).click()

    results = page.get_by_role("region", name="Search results")
    first = results.get_by_role("listitem").first
    expect(first).to_contain_text("Canvas Sneakers")
    expect(first).to_contain_text("€79.00")
    first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Canvas Sneakers", level=1)).to_be_visible()

    [searched] = Event.objects.filter(tenant=acme_shop.acme, name="Products Searched")
    assert searched.properties["query"] == "sneekers"
    assert searched.properties["result_count"] >= 1
    wait_for(page, lambda: tracked(acme_shop.acme, "Product Clicked"), what="the click")
    [clicked] = tracked(acme_shop.acme, "Product Clicked")
    assert clicked.properties == {
        "search_id": searched.properties["search_id"],
        "query": "sneekers",
        "sku": "FOO-09",
        "position": 1,
    }


def recommended(page: Page, placement: str) -> list[str]:
    """The products the tracker put in the page's recommendations for `placement` (the element
    is hidden when there are none)."""
    section = page.locator(f'[data-wayfarer-recommendations="{placement}"]')
    expect(section).to_have_attribute("data-wayfarer-state", re.compile("filled|empty"))
    return section.locator(".wayfarer-product-name").all_inner_texts()


@pytest.mark.e2e
def test_a_customer_is_never_recommended_what_they_bought_or_what_is_out_of_stock(
    browser_page: Page, live_server: Any, acme_shop: Any, ingest_inline: None
) -> None:
    page = browser_page
    sign_in_and_open_shop(page, live_server)
    page.get_by_label("Email").fill("mara@example.com")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{SHOP}?product=TEN-02")
    page.get_by_role("button", name="Add Summit Tent 3P to cart").click()
    page.get_by_role("button", name="Check out").click()
    page.get_by_role("dialog", name="Checkout").get_by_role("button", name="Buy now").click()
    wait_for(page, lambda: tracked(acme_shop.acme, "Order Completed"), what="the order")

    page.goto(f"{SHOP}?product=TEN-01")

    similar = recommended(page, "product-page")
    assert "Bivy Shelter" in similar  # the other tent: the strategy is not empty
    assert "Summit Tent 3P" not in similar  # bought
    assert "Trail Tent 2P" not in similar  # the product itself
    page.goto(f"{SHOP}?page=home")
    picks = recommended(page, "home")
    out_of_stock = set(
        Product.objects.filter(tenant=acme_shop.acme, in_stock=False).values_list("name", flat=True)
    )
    assert "Summit Tent 3P" not in picks
    assert not out_of_stock & set(picks)
    assert not out_of_stock & set(similar)

    # A click on a recommendation is recorded with what was served.
    page.goto(f"{SHOP}?product=TEN-01")
    page.get_by_role("region", name="You may also like").get_by_role(
        "link", name=re.compile("Bivy Shelter")
    ).click()
    expect(page.get_by_role("heading", name="Bivy Shelter", level=1)).to_be_visible()
    wait_for(page, lambda: tracked(acme_shop.acme, "Recommendation Clicked"), what="the click")
    [clicked] = tracked(acme_shop.acme, "Recommendation Clicked")
    served = [
        e
        for e in tracked(acme_shop.acme, "Recommendation Served")
        if e.properties["recommendation_id"] == clicked.properties["recommendation_id"]
    ]
    assert served and "TEN-03" in served[0].properties["skus"]
    assert clicked.properties["sku"] == "TEN-03"
    assert (clicked.properties["placement"], clicked.properties["strategy"]) == (
        "product-page",
        "similar",
    )


@pytest.mark.e2e
def test_the_embedded_survey_records_one_answer_per_visitor(
    browser: Browser, live_server: Any, transactional_db: None, acme_shop: Any, ingest_inline: None
) -> None:
    survey = Survey.objects.get(tenant=acme_shop.acme)
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        sign_in_and_open_shop(page, live_server)
        # The same visitor in a second tab, with the survey still open there.
        second = context.new_page()
        second.goto(f"{SHOP}?page=home")
        question = "How likely are you to recommend Acme to a friend?"
        for tab in (page, second):
            expect(tab.get_by_role("group", name=question)).to_be_visible()

        card = page.get_by_role("region", name="Your opinion")
        card.get_by_role("button", name="Send").click()
        expect(card.get_by_role("alert")).to_have_text("Choose a score from 0 to 10.")
        card.get_by_role("radio", name="9", exact=True).check()
        card.get_by_label("Anything you would like to tell us? (optional)").fill("Great tents")
        card.get_by_role("button", name="Send").click()
        expect(card.get_by_role("status")).to_have_text(survey.thanks)

        answer = SurveyAnswer.objects.get(tenant=acme_shop.acme, survey=survey)
        assert (answer.score, answer.comment, answer.channel) == (9, "Great tents", "web")
        [event] = tracked(acme_shop.acme, "Survey Answered")
        assert (event.properties["score"], event.properties["channel"]) == (9, "web")
        assert event.contact_id == answer.contact_id

        # The other tab answers too: Wayfarer says 409, the tab thanks rather than failing.
        other = second.get_by_role("region", name="Your opinion")
        other.get_by_role("radio", name="3", exact=True).check()
        other.get_by_role("button", name="Send").click()
        expect(other.get_by_role("status")).to_have_text(
            "You have already answered this survey. Thank you!"
        )
        # And the next page knows before asking.
        second.goto(f"{SHOP}?page=home")
        expect(second.get_by_role("region", name="Your opinion")).to_contain_text(
            "You have already answered"
        )
        expect(second.get_by_role("radio")).to_have_count(0)
    assert SurveyAnswer.objects.filter(tenant=acme_shop.acme).count() == 1


@pytest.mark.e2e
@pytest.mark.parametrize("width", [1366, 390])
def test_the_shop_pages_fit_the_screen(
    browser: Browser, live_server: Any, transactional_db: None, acme_shop: Any, width: int
) -> None:
    """Screenshots (var/…/screens/demo-shop/) of every page of the shop, filled in, and no
    horizontal scroll on a phone."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    with live_context(browser, live_server.url) as context:
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        sign_in_and_open_shop(page, live_server)
        shots = {
            "home": f"{SHOP}?page=home",
            "category": f"{SHOP}?category=tents",
            "product": f"{SHOP}?product=TEN-01",
        }
        for name, url in shots.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            if name == "home":
                expect(page.locator(BANNER)).to_have_attribute("data-wayfarer-state", "filled")
            if name == "category":
                page.get_by_label("Search products").fill("sneekers")
                page.get_by_role("button", name="Search", exact=True).click()
                expect(page.get_by_role("region", name="Search results")).to_be_visible()
            page.screenshot(path=SCREENS / f"{name}-{width}.png", full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{name} is {scroll} px wide at {width}"


@pytest.mark.e2e
def test_the_functions_answer_promises_and_a_short_survey_posts_its_answers(
    browser_page: Page, live_server: Any, acme_shop: Any, ingest_inline: None
) -> None:
    """What a shop that renders for itself calls: recommendations(), search(), placements() and
    survey() on an element of its own."""
    from personalisation.surveys.services import survey_create

    short = survey_create(
        tenant=acme_shop.acme,
        name="After the trip",
        kind="short",
        question="Tell us about your last trip",
        questions=[
            {"type": "choice", "label": "Where did you go?", "choices": ["Hills", "Coast"]},
            {"type": "scale", "label": "How was the gear?"},
            {"type": "text", "label": "What was missing?"},
        ],
        thanks="Thanks, see you on the trail!",
    )
    page = browser_page
    sign_in_and_open_shop(page, live_server)

    answers = page.evaluate(
        """async () => {
          const w = window.wayfarer;
          const recs = await w.recommendations({strategy: "similar", product: "TEN-01", limit: 2});
          const found = await w.search("sneekers", {limit: 3});
          const banners = await w.placements(["home-banner", "no-such-placement"]);
          return {recs, found, banners};
        }"""
    )
    assert answers["recs"]["strategy"] == "similar"
    assert 1 <= len(answers["recs"]["products"]) <= 2
    assert set(answers["recs"]["products"][0]) >= {"sku", "name", "url", "price", "inStock"}
    assert answers["found"]["products"][0]["sku"] == "FOO-09"
    assert answers["banners"]["no-such-placement"] is None
    assert answers["banners"]["home-banner"]["title"] == "Gear for every trail"

    page.evaluate(
        """(id) => {
          const box = document.createElement("div");
          box.id = "trip-survey";
          document.querySelector(".shop-main").prepend(box);
          return window.wayfarer.survey(id, box).then(() => true);
        }""",
        str(short.public_id),
    )
    box = page.locator("#trip-survey")
    expect(box.get_by_text("Tell us about your last trip")).to_be_visible()
    box.get_by_role("button", name="Send").click()
    expect(box.get_by_role("alert")).to_have_text("Answer at least one question.")
    box.get_by_role("group", name="Where did you go?").get_by_role("radio", name="Coast").check()
    box.get_by_role("group", name="How was the gear?").get_by_role("radio", name="4").check()
    box.get_by_label("What was missing?").fill("A bigger pot")
    box.get_by_role("button", name="Send").click()
    expect(box.get_by_role("status")).to_have_text("Thanks, see you on the trail!")

    answer = SurveyAnswer.objects.get(tenant=acme_shop.acme, survey=short)
    assert answer.answers == {"q1": "Coast", "q2": 4, "q3": "A bigger pot"}
    assert answer.score is None


@pytest.mark.e2e
def test_nothing_wayfarer_answers_becomes_markup_or_a_script_link(
    browser_page: Page, live_server: Any, acme_shop: Any
) -> None:
    """The tracker's own guard, whatever a server answers: these answers are made up here, since
    Wayfarer itself refuses such URLs when a marketer saves them."""
    hostile = "<img src=x id=injected>"
    page = browser_page
    page.route(
        "**/v1/placements?*",
        lambda route: route.fulfill(
            json={
                "placements": {
                    "home-banner": {
                        "placement": "home-banner",
                        "variant": "v1",
                        "name": "Hostile",
                        "title": hostile,
                        "body": "<script>window.pwned = 1</script>",
                        "imageUrl": "javascript:alert(1)",
                        "linkUrl": "javascript:window.pwned=1",
                        "linkText": "Click",
                    }
                }
            }
        ),
    )
    page.route(
        "**/v1/recommendations?*",
        lambda route: route.fulfill(
            json={
                "recommendationId": "r1",
                "strategy": "auto",
                "placement": "home",
                "products": [
                    {
                        "sku": "X-1",
                        "name": hostile,
                        "url": "data:text/html,<script>alert(1)</script>",
                        "imageUrl": "https://img.example/x.png",
                        "price": 5,
                        "currency": "EUR",
                        "category": "x",
                        "inStock": True,
                    }
                ],
            }
        ),
    )
    sign_in_and_open_shop(page, live_server)

    banner = page.locator(BANNER)
    expect(banner).to_have_attribute("data-wayfarer-state", "filled")
    expect(banner.locator(".wayfarer-placement-title")).to_have_text(hostile)
    expect(banner.locator("a")).to_have_count(0)  # a javascript: link is no link
    expect(banner.locator("img")).to_have_count(0)
    picks = page.locator('[data-wayfarer-recommendations="home"]')
    expect(picks.locator(".wayfarer-product-name")).to_have_text(hostile)
    # Product links go to the shop's own page (data-product-url), never to the data: URL.
    expect(picks.locator("a")).to_have_attribute(
        "href", f"{live_server.url}/t/acme/demo-shop/?product=X-1"
    )
    expect(page.locator("#injected")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
