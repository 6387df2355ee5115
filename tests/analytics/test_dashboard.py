"""The home dashboard and the analytics dashboards, as a marketer reads them: the figures equal
what was ingested, rates over nothing read "—", the period picker and its comparison, CSV
downloads, and one team never sees another's numbers."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics import selectors
from analytics.models import DailyMetric, StageSnapshot
from audience.models import Contact, Event
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from journeys.models import Enrollment, Journey, JourneyVersion
from tests.statements import rls_statements

PAGES = ["traffic", "sales", "retention", "messages", "nps"]
URLS = ["/t/acme/", *(f"/t/acme/analytics/{p}/" for p in PAGES)]


def send(tenant: Any, **message: Any) -> None:
    message.setdefault("messageId", str(uuid.uuid4()))
    calls_record(tenant=tenant, calls=[parse_call(message)])


def figure(page: str, key: str) -> str:
    """The value a figure's card shows (as text, the way it reads)."""
    found = re.search(
        rf'id="figure-{key}".*?<p class="an-figure-value"><data value="[^"]*">(.*?)</data>',
        page,
        re.S,
    )
    assert found, f"no figure {key}"
    return html.unescape(found.group(1)).replace("\xa0", " ")


def change(page: str, key: str) -> str:
    """The change under a figure, in the words a screen reader says (or "no comparison")."""
    card = re.search(rf'id="figure-{key}"(.*?)</li>', page, re.S)
    assert card
    words = re.search(r'class="visually-hidden">(.*?)</span>', card.group(1))
    if words:
        return words.group(1)
    text = re.search(r'class="an-change-text">(.*?)</span>', card.group(1))
    assert text
    return html.unescape(text.group(1))


@pytest.fixture
def shop(world: Any) -> Any:
    """Today, through ingestion: ann (known by email) and an anonymous visitor browse; ann
    orders twice (40 + 60) after 4 checkouts; three NPS answers (10, 9, 3); four emails sent
    and delivered to ann, one opened, none bounced; no push at all."""
    acme = world.acme
    send(acme, type="identify", userId="ann", traits={"email": "ann@example.com"})
    send(acme, type="page", userId="ann", name="Home")
    send(acme, type="page", anonymousId="anon-1", name="Home")
    for _ in range(4):
        send(acme, type="track", userId="ann", event="Checkout Started")
    for total in (40, 60):
        send(
            acme,
            type="track",
            userId="ann",
            event="Order Completed",
            properties={"order_id": str(uuid.uuid4()), "total": total},
        )
    for who, score in (("ann", 10), ("ann", 9)):
        send(acme, type="track", userId=who, event="NPS Submitted", properties={"score": score})
    send(acme, type="track", anonymousId="anon-1", event="NPS Submitted", properties={"score": 3})
    ann = Contact.objects.get(tenant=acme, user_id="ann")
    facts = [
        Fact(ann.pk, name, f"delivery-{n}:{name}", "messaging")
        for n in range(4)
        for name in ("Email Sent", "Email Delivered")
    ]
    facts.append(Fact(ann.pk, "Email Opened", "delivery-0:open", "messaging"))
    events_record(tenant=acme, facts=facts)
    # Another team's busy day never shows on acme's pages.
    seed_days(world.globex, {"visitors": 98765, "orders": 4321, "email_sent": 55555}, days=30)
    return world


def seed_days(tenant: Any, values: dict[str, int], *, days: int, back: int = 0) -> None:
    """Rollup rows as they stand after ingestion: the same `values` on `days` days, ending
    `back` days before today."""
    end = selectors.today(tenant) - timedelta(days=back)
    DailyMetric.objects.bulk_create(
        DailyMetric(tenant=tenant, day=end - timedelta(days=n), metric=k, value=v)
        for n in range(days)
        for k, v in values.items()
    )


# --- the figures equal what was ingested -------------------------------------------------------


def test_the_dashboards_show_what_was_ingested_today(login: Any, shop: Any) -> None:
    client = login(shop.alice)
    traffic = client.get("/t/acme/analytics/traffic/?range=7").content.decode()
    assert figure(traffic, "visitors") == "2"
    assert figure(traffic, "identified_visitors") == "1"
    assert figure(traffic, "identified_share") == "50.0 %"

    sales = client.get("/t/acme/analytics/sales/?range=7").content.decode()
    assert figure(sales, "orders") == "2"
    assert figure(sales, "revenue") == "100.00"
    assert figure(sales, "average_order_value") == "50.00"
    assert figure(sales, "conversion_rate") == "50.0 %"  # 1 buyer of 2 visitors
    assert figure(sales, "cart_abandonment") == "50.0 %"  # 2 orders of 4 checkouts
    assert figure(sales, "repeat_purchase_rate") == "100.0 %"  # ann, the one customer, twice
    assert figure(sales, "customer_lifetime_value") == "100.00"  # 100 from 1 customer
    assert figure(sales, "customers") == "1"

    messages = client.get("/t/acme/analytics/messages/?range=7").content.decode()
    assert figure(messages, "email_sent") == "4"
    assert figure(messages, "email_open_rate") == "25.0 %"
    assert figure(messages, "email_click_rate") == "0.0 %"
    assert figure(messages, "email_bounce_rate") == "0.0 %"
    assert figure(messages, "push_sent") == "0"

    nps = client.get("/t/acme/analytics/nps/?range=7").content.decode()
    assert figure(nps, "nps_responses") == "3"
    assert figure(nps, "nps") == "33"  # (2 promoters - 1 detractor) / 3 x 100


def test_the_home_page_shows_this_weeks_figures(login: Any, shop: Any) -> None:
    page = login(shop.alice).get("/t/acme/").content.decode()
    tracked = Event.objects.filter(tenant=shop.acme).exclude(message_id__startswith="wf:").count()
    assert figure(page, "events_today") == str(tracked)
    assert figure(page, "contacts") == str(Contact.objects.filter(tenant=shop.acme).count())
    assert figure(page, "identified_share") == "50.0 %"
    assert figure(page, "messages_sent") == "4"
    assert figure(page, "email_open_rate") == "25.0 %"
    assert figure(page, "email_unsubscribe_rate") == "0.0 %"
    assert "Times in UTC" in page
    assert "98,765" not in page and "55,555" not in page  # globex's


def test_a_rate_over_nothing_shows_a_dash_not_zero(login: Any, shop: Any) -> None:
    client = login(shop.alice)
    messages = client.get("/t/acme/analytics/messages/?range=7").content.decode()
    assert figure(messages, "push_click_rate") == "—"  # nothing sent
    empty = login(shop.charlie).get("/t/globex/analytics/sales/").content.decode()
    assert figure(empty, "cart_abandonment") == "—"  # no checkouts at globex
    assert figure(empty, "conversion_rate") == "0.0 %"  # visitors, no buyers: a real 0


# --- the period and its comparison -------------------------------------------------------------


def test_each_figure_compares_with_the_previous_period_of_the_same_length(
    login: Any, world: Any
) -> None:
    seed_days(world.acme, {"visitors": 150, "email_delivered": 100, "email_opened": 30}, days=7)
    seed_days(
        world.acme, {"visitors": 100, "email_delivered": 100, "email_opened": 20}, days=7, back=7
    )
    client = login(world.alice)
    traffic = client.get("/t/acme/analytics/traffic/?range=7").content.decode()
    assert figure(traffic, "visitors") == "1,050"
    assert change(traffic, "visitors") == "up 50 %"
    assert "vs the previous 7 days (700)" in traffic
    messages = client.get("/t/acme/analytics/messages/?range=7").content.decode()
    assert figure(messages, "email_open_rate") == "30.0 %"
    assert change(messages, "email_open_rate") == "up 10 percentage points"
    assert "+10\xa0pp" in messages
    # Thirty days hold both weeks; their comparison had nothing: no change to compute.
    month = client.get("/t/acme/analytics/traffic/").content.decode()
    assert figure(month, "visitors") == "1,750"
    assert change(month, "visitors") == "up from nothing"
    assert change(month, "identified_share") == "no comparison"


def test_a_worse_rate_says_so_in_words_and_colour(login: Any, world: Any) -> None:
    seed_days(world.acme, {"email_sent": 100, "email_bounced": 5}, days=7)
    seed_days(world.acme, {"email_sent": 100, "email_bounced": 2}, days=7, back=7)
    page = login(world.alice).get("/t/acme/analytics/messages/?range=7").content.decode()
    card = re.search(r'id="figure-email_bounce_rate"(.*?)</li>', page, re.S)
    assert card and "an-bad an-up" in card.group(1)
    assert change(page, "email_bounce_rate") == "up 3 percentage points"


def test_a_custom_range_shows_those_days_against_the_days_before(login: Any, world: Any) -> None:
    today = selectors.today(world.acme)
    seed_days(world.acme, {"orders": 3}, days=20)
    start, end = today - timedelta(days=9), today - timedelta(days=5)
    response = login(world.alice).get(
        f"/t/acme/analytics/sales/?range=custom&start={start}&end={end}"
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert figure(page, "orders") == "15"  # 5 days x 3
    assert "(5 days)" in page
    assert change(page, "orders") == "no change"  # the 5 days before had 15 too


def test_dates_typed_in_mean_a_custom_range_and_presets_stay_relative(
    login: Any, world: Any
) -> None:
    today = selectors.today(world.acme)
    seed_days(world.acme, {"orders": 1}, days=20)
    client = login(world.alice)
    start = today - timedelta(days=3)
    # The picker sends its (empty) date fields with a ticked preset: still the last 7 days.
    preset = client.get("/t/acme/analytics/sales/?range=7&start=&end=").content.decode()
    assert "(7 days)" in preset and figure(preset, "orders") == "7"
    assert 'name="start" value=""' in preset  # a bookmark of it stays "the last 7 days"
    typed = client.get(f"/t/acme/analytics/sales/?range=7&start={start}&end={today}")
    page = typed.content.decode()
    assert "(4 days)" in page and figure(page, "orders") == "4"
    assert re.search(r'value="custom" checked', page)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-12-05&end=2026-12-01", "The last day must not come before the first."),
        ("start=2026-12-01&end=2999-01-01", "The last day can be today"),
        ("start=2020-01-01&end=2026-12-01", "Choose at most 366 days."),
        ("end=2026-12-01", "Choose the first day of the range."),
        ("start=1st+of+May&end=2026-12-01", "Enter a valid date."),
    ],
)
def test_a_wrong_custom_range_is_explained_and_the_default_shown(
    login: Any, world: Any, query: str, message: str
) -> None:
    response = login(world.alice).get(f"/t/acme/analytics/traffic/?range=custom&{query}")
    page = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert message in page
    assert "these are the last 30 days instead" in page
    assert "(30 days)" in page
    csv = login(world.alice).get(f"/t/acme/analytics/traffic/?range=custom&{query}&format=csv")
    assert csv.status_code == 400 and not csv.has_header("Content-Disposition")


# --- CSV ---------------------------------------------------------------------------------------


def test_every_table_downloads_as_csv_named_for_the_team_and_period(login: Any, world: Any) -> None:
    seed_days(world.acme, {"orders": 2, "revenue": 90, "checkouts": 4}, days=7)
    today = selectors.today(world.acme)
    start = today - timedelta(days=6)
    client = login(world.bob)  # a viewer may download too
    response = client.get("/t/acme/analytics/sales/?range=7&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="sales-acme-{start}-{today}.csv"'
    )
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Period,Day,Revenue,Orders,Conversion rate (%),Cart abandonment (%)")
    assert len(lines) == 1 + 14  # the previous 7 days, then these 7
    assert lines[-1].startswith(f"this,{today},90.00,2,,50.00,45.00,")
    assert lines[1].startswith(f"previous,{start - timedelta(days=7)},0.00,0,,,,")

    chart = client.get("/t/acme/analytics/sales/?range=7&format=csv&chart=revenue")
    assert chart["Content-Disposition"] == (
        f'attachment; filename="sales-revenue-acme-{start}-{today}.csv"'
    )
    assert chart.content.decode("utf-8-sig").splitlines()[0] == "Period,Day,Revenue"


def test_the_retention_page_counts_churn_from_the_stage_history(login: Any, world: Any) -> None:
    today = selectors.today(world.acme)
    for back, at_risk in ((0, 30), (7, 20)):
        StageSnapshot.objects.bulk_create(
            StageSnapshot(tenant=world.acme, day=today - timedelta(days=back), stage=s, contacts=n)
            for s, n in {
                "awareness": 1000,
                "onboarding": 20,
                "engagement": 50,
                "retention": at_risk,
                "advocacy": 0,
            }.items()
        )
    page = login(world.alice).get("/t/acme/analytics/retention/?range=7").content.decode()
    assert figure(page, "churn_rate") == "30.0 %"  # 30 of 100 customers
    assert figure(page, "retention_rate") == "70.0 %"
    assert change(page, "churn_rate") == "up 7.8 percentage points"  # from 20 of 90 (22.2 %)
    assert re.search(r"Awareness</th><td class=\"num\">1,000", page)
    csv = login(world.alice).get("/t/acme/analytics/retention/?range=7&format=csv&chart=churn")
    assert csv.content.decode("utf-8-sig").splitlines()[-1] == f"this,{today},30.00"


# --- the home page's journeys and checklist ----------------------------------------------------


def test_the_home_page_says_what_live_journeys_earned_this_week(login: Any, shop: Any) -> None:
    acme = shop.acme
    ann = Contact.objects.get(tenant=acme, user_id="ann")
    journey = Journey.objects.create(tenant=acme, name="Win back", status=Journey.Status.LIVE)
    version = JourneyVersion.objects.create(
        tenant=acme, journey=journey, number=1, state=JourneyVersion.State.PUBLISHED
    )
    now = timezone.now()
    for days_ago, revenue in ((0, "30.00"), (1, "45.50"), (9, "10.00")):
        Enrollment.objects.create(
            tenant=acme,
            journey=journey,
            version=version,
            contact=ann,
            node_key="goal",
            state=Enrollment.State.CONVERTED,
            converted_at=now - timedelta(days=days_ago),
            revenue=Decimal(revenue),
        )
    paused = Journey.objects.create(tenant=acme, name="Paused one", status="paused")
    page = login(shop.bob).get("/t/acme/").content.decode()
    row = re.search(r"Win back</a></th>(.*?)</tr>", page, re.S)
    assert row, page
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
    assert cells == ["2", "75.50"]  # this week's two; the one of 9 days ago was last week's
    assert "up 655 %" in row.group(1)  # 75.50 against 10.00
    assert paused.name not in page


def test_the_checklist_leads_until_there_is_data_then_folds_away(login: Any, world: Any) -> None:
    empty = login(world.alice).get("/t/acme/").content.decode()
    assert '<section class="card an-getting-started"' in empty
    assert "<details" not in empty.split('id="getting-started"')[0][-200:]
    send(world.acme, type="page", anonymousId="a-1", name="Home")
    busy = login(world.alice).get("/t/acme/").content.decode()
    assert '<details class="card an-setup" id="getting-started">' in busy
    assert "an-getting-started" not in busy
    assert "Create a <strong>write key</strong>" in busy  # still there, folded


# --- tenancy, roles, cost ----------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_another_teams_member_gets_404_and_a_viewer_reads(login: Any, world: Any, url: str) -> None:
    assert login(world.charlie).get(url).status_code == 404
    assert login(world.charlie).get(url + "?format=csv").status_code == 404
    assert login(world.bob).get(url).status_code == 200


@pytest.mark.parametrize("url", URLS)
def test_another_teams_figures_never_show(login: Any, world: Any, url: str) -> None:
    seed_days(world.globex, dict.fromkeys(("visitors", "orders", "email_sent"), 97531), days=40)
    StageSnapshot.objects.create(
        tenant=world.globex, day=selectors.today(world.globex), stage="retention", contacts=97531
    )
    page = login(world.alice).get(url + "?range=90").content.decode()
    assert "97,531" not in page and "97531" not in page
    csv = login(world.alice).get(url + "?range=90&format=csv").content.decode()
    assert "97531" not in csv


# Each page's own reads: the rollups of both periods (+ all time before them for the sales
# page's lifetime figures; the stage history and its moves for retention).
PAGE_QUERIES = {"traffic": 1, "sales": 2, "retention": 2, "messages": 1, "nps": 1}


def shell_queries() -> int:
    """Every tenant page's: the session, the user, the membership and the team switcher's
    list, with the row-level-security scope set around them on PostgreSQL."""
    return 4 + rls_statements(4)


@pytest.mark.parametrize("page", PAGES)
def test_a_dashboard_costs_the_same_few_queries_whatever_the_data(
    login: Any, world: Any, django_assert_num_queries: Any, page: str
) -> None:
    client = login(world.alice)
    url = f"/t/acme/analytics/{page}/?range=90"
    client.get(url)  # the session and the team, warmed as a browser would
    expected = PAGE_QUERIES[page] + shell_queries()
    with django_assert_num_queries(expected):
        client.get(url)
    seed_days(world.acme, {"visitors": 5, "orders": 1, "revenue": 20}, days=400)
    with django_assert_num_queries(expected):
        client.get(url)


def live_journey(tenant: Any, name: str) -> Journey:
    journey = Journey.objects.create(tenant=tenant, name=name, status=Journey.Status.LIVE)
    JourneyVersion.objects.create(
        tenant=tenant, journey=journey, number=1, state=JourneyVersion.State.PUBLISHED
    )
    return journey


def test_the_home_page_costs_the_same_queries_however_many_journeys(
    login: Any, world: Any, django_assert_num_queries: Any
) -> None:
    client = login(world.alice)
    live_journey(world.acme, "One")
    client.get("/t/acme/")
    # Rollups, stage counts, their history, journeys and their conversions, this week's
    # sends; the checklist's keys, members and the sender step.
    with django_assert_num_queries(9 + shell_queries()):
        client.get("/t/acme/")
    for n in range(5):
        live_journey(world.acme, f"More {n}")
    seed_days(world.acme, {"visitors": 5, "events": 50}, days=30)
    with django_assert_num_queries(9 + shell_queries()):
        client.get("/t/acme/")
