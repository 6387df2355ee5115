"""Personalisation → Onsite content: what a marketer sees and does, what a viewer may only read,
and that another team's placements are never reachable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.timezone import now

from audience.inbox import inbox_drain
from personalisation.placements.models import Placement, PlacementVariant

pytestmark = pytest.mark.django_db


def url(world, path: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/t/{world.acme.slug}/personalisation/placements/{path}"


def event(name: str, variant: PlacementVariant, n: int, days_ago: float = 1) -> dict[str, object]:
    return {
        "type": "track",
        "event": name,
        "messageId": f"{name}-{variant.name}-{n}-{days_ago}",
        "anonymousId": f"visitor-{n}",
        "timestamp": (now() - timedelta(days=days_ago)).isoformat(),
        "properties": {
            "placement": variant.placement.key,
            "variant": str(variant.public_id),
            "variant_name": variant.name,
        },
    }


def test_it_lists_impressions_clicks_and_ctr_per_variant_over_30_days(
    login, world, banner, batch
) -> None:
    calls = [event("Placement Viewed", banner.outdoor, n) for n in range(8)]
    calls += [event("Placement Clicked", banner.outdoor, n) for n in range(2)]
    calls += [event("Placement Viewed", banner.default, n) for n in range(3)]
    calls += [event("Placement Viewed", banner.default, n, days_ago=40) for n in range(5)]
    # globex's events about its own variant never count for acme
    calls_globex = [event("Placement Viewed", banner.globex_default, n) for n in range(4)]
    batch(calls)
    batch(calls_globex, tenant="globex")
    inbox_drain()

    page = login(world.bob).get(url(world)).content.decode()  # a viewer reads it

    assert "Home banner" in page and "home-banner" in page
    outdoor_row = page[page.index("<td>Outdoor") :].split("</tr>")[0]
    assert [cell.split("<")[0] for cell in outdoor_row.split('class="num">')[1:]] == [
        "8",
        "2",
        "25.0%",
    ]
    default_row = page[page.index("<td>Everyone") :].split("</tr>")[0]
    assert [cell.split("<")[0] for cell in default_row.split('class="num">')[1:]] == [
        "3",  # the views of 40 days ago are out of the period
        "0",
        "0.0%",
    ]
    welcome_row = page[page.index("<td>Welcome") :].split("</tr>")[0]
    assert "—" in welcome_row  # no impression: no rate
    assert "Globex" not in page


def test_it_shows_an_empty_state_that_says_how_to_start(login, world) -> None:
    page = login(world.dave).get(url(world)).content.decode()
    assert "No placements yet" in page and "data-wayfarer-placement" in page
    assert "New placement" in page


def test_it_creates_a_placement_and_a_variant_from_the_forms(login, world, banner) -> None:
    client = login(world.dave)  # a marketer
    response = client.post(url(world, "new/"), {"key": "cart-upsell", "name": "Cart upsell"})
    placement = Placement.objects.get(tenant=world.acme, key="cart-upsell")
    assert response.status_code == 302
    assert response["Location"] == url(world, f"{placement.public_id}/")

    response = client.post(
        url(world, f"{placement.public_id}/variants/new/"),
        {
            "name": "Outdoor",
            "title": "Add a headlamp",
            "link_url": "/p/headlamp",
            "segment": str(banner.segment.public_id),
            "lifecycle_stage": "",
            "active": "on",
        },
    )
    assert response.status_code == 302
    variant = PlacementVariant.objects.get(placement=placement)
    assert variant.segment == banner.segment and variant.active
    detail = client.get(url(world, f"{placement.public_id}/")).content.decode()
    assert "Add a headlamp" in detail and "Segment “Outdoor lovers”" in detail


def test_it_shows_form_errors_and_keeps_what_was_typed(login, world, banner) -> None:
    client = login(world.dave)
    response = client.post(url(world, "new/"), {"key": "home-banner", "name": "Again"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Another placement has this key." in page and 'value="Again"' in page

    response = client.post(
        url(world, f"{banner.placement.public_id}/variants/new/"),
        {"name": "Bad", "title": "", "link_url": "javascript:alert(1)", "active": "on"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Write the title visitors see." in page
    assert "Enter an https:// (or http://) address" in page
    assert 'value="Bad"' in page and 'value="javascript:alert(1)"' in page
    assert PlacementVariant.objects.filter(placement=banner.placement).count() == 3


def test_it_offers_only_the_teams_own_segments(login, world, banner) -> None:
    from segments.services import segment_create
    from tests.personalisation.placements.conftest import outdoor_rules

    theirs = segment_create(tenant=world.globex, name="Globex VIPs", rules=outdoor_rules())
    client = login(world.dave)
    form = client.get(url(world, f"{banner.placement.public_id}/variants/new/")).content.decode()
    assert "Outdoor lovers" in form and "Globex VIPs" not in form
    response = client.post(
        url(world, f"{banner.placement.public_id}/variants/new/"),
        {"name": "Sneaky", "title": "x", "segment": str(theirs.public_id), "active": "on"},
    )
    assert response.status_code == 400
    assert not PlacementVariant.objects.filter(name="Sneaky").exists()


def test_it_moves_deactivates_and_edits_variants(login, world, banner) -> None:
    client = login(world.dave)
    base = url(world, f"{banner.placement.public_id}/variants/{banner.onboarding.public_id}/")
    client.post(f"{base}move/", {"direction": "up"})
    order = list(
        PlacementVariant.objects.filter(placement=banner.placement).values_list("name", flat=True)
    )
    assert order == ["Everyone", "Welcome", "Outdoor"]
    client.post(f"{base}move/", {"direction": "up"})
    client.post(f"{base}move/", {"direction": "up"})  # already first: stays
    assert PlacementVariant.objects.get(pk=banner.onboarding.pk).position == 0

    client.post(f"{base}toggle/")
    assert PlacementVariant.objects.get(pk=banner.onboarding.pk).active is False
    detail = client.get(url(world, f"{banner.placement.public_id}/")).content.decode()
    assert "Inactive: never shown." in detail

    response = client.post(
        f"{base}edit/",
        {"name": "Welcome", "title": "Welcome back", "lifecycle_stage": "onboarding"},
    )
    assert response.status_code == 302
    assert PlacementVariant.objects.get(pk=banner.onboarding.pk).title == "Welcome back"


def test_it_warns_of_a_default_that_can_never_be_shown(login, world, banner) -> None:
    from personalisation.placements.services import variant_create

    variant_create(tenant=world.acme, placement=banner.placement, name="Spare", title="x")
    detail = login(world.bob).get(url(world, f"{banner.placement.public_id}/")).content.decode()
    assert "Never shown: the default above comes first." in detail


def test_it_previews_a_variant_as_it_is_typed(login, world, banner) -> None:
    client = login(world.dave)
    response = client.post(
        url(world, f"{banner.placement.public_id}/variants/preview/"),
        {"title": "<b>Tents</b>", "body": "Under the stars", "link_url": "/x", "link_text": "Go"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;Tents&lt;/b&gt;" in html and "Under the stars" in html and "Go →" in html


def test_it_lets_a_viewer_read_but_not_build(login, world, banner) -> None:
    client = login(world.bob)
    detail = client.get(url(world, f"{banner.placement.public_id}/")).content.decode()
    assert "Tents from 89 €" in detail  # the preview
    assert "Add variant" not in detail and "Deactivate" not in detail
    assert "New placement" not in client.get(url(world)).content.decode()
    pid, vid = banner.placement.public_id, banner.outdoor.public_id
    for path in ("new/", f"{pid}/edit/", f"{pid}/variants/new/", f"{pid}/variants/{vid}/edit/"):
        form = client.get(url(world, path)).content.decode()  # read-only
        assert "Only marketers of the team can change placements." in form
        assert 'type="submit" class="primary"' not in form and "disabled" in form
    for method, path, data in [
        ("post", "new/", {"key": "x", "name": "x"}),
        ("post", f"{pid}/edit/", {"key": "x", "name": "x"}),
        ("post", f"{pid}/variants/new/", {"name": "x", "title": "x"}),
        ("post", f"{pid}/variants/preview/", {"title": "x"}),
        ("post", f"{pid}/variants/{vid}/edit/", {"name": "x", "title": "x"}),
        ("post", f"{pid}/variants/{vid}/move/", {"direction": "up"}),
        ("post", f"{pid}/variants/{vid}/toggle/", None),
    ]:
        response = getattr(client, method)(url(world, path), data or {})
        assert response.status_code == 403, (method, path)
    assert PlacementVariant.objects.get(pk=banner.outdoor.pk).active


def test_it_answers_404_for_another_teams_placement_and_variants(login, world, banner) -> None:
    client = login(world.alice)
    theirs, their_variant = banner.globex.public_id, banner.globex_default.public_id
    mine = banner.placement.public_id
    for method, path in [
        ("get", f"{theirs}/"),
        ("get", f"{theirs}/edit/"),
        ("post", f"{theirs}/edit/"),
        ("get", f"{theirs}/variants/new/"),
        ("post", f"{theirs}/variants/preview/"),
        ("get", f"{theirs}/variants/{their_variant}/edit/"),
        ("post", f"{theirs}/variants/{their_variant}/move/"),
        ("post", f"{theirs}/variants/{their_variant}/toggle/"),
        ("get", f"{mine}/variants/{their_variant}/edit/"),
        ("post", f"{mine}/variants/{their_variant}/toggle/"),
    ]:
        response = getattr(client, method)(url(world, path), {"title": "x", "name": "x"})
        assert response.status_code == 404, (method, path)
    assert PlacementVariant.objects.get(pk=banner.globex_default.pk).active
    # and globex's owner cannot open acme's pages at all
    charlie = login(world.charlie)
    assert charlie.get(url(world)).status_code in (403, 404)


def test_it_refuses_to_delete_a_segment_a_variant_targets(api, banner) -> None:
    response = api("delete", f"segments/{banner.segment.public_id}/")
    assert response.status_code == 409
    assert "Home banner" in response.content.decode()
