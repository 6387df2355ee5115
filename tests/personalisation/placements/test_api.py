"""REST API /api/v1/placements/ (secret key): what an integrator's server can build with it, and
that another team's key sees nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalisation.placements.models import Placement, PlacementVariant
from personalisation.placements.services import placement_create, variant_create
from segments.services import segment_create
from tests.personalisation.placements.conftest import outdoor_rules

pytestmark = pytest.mark.django_db


def fields(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]


def test_it_builds_a_placement_with_targeted_variants(api, world) -> None:
    segment = segment_create(tenant=world.acme, name="Outdoor lovers", rules=outdoor_rules())
    created = api("post", "placements/", {"key": "home-banner", "name": "Home banner"})
    assert created.status_code == 201, created.content
    placement = created.json()
    assert placement["key"] == "home-banner" and placement["variants"] == []
    base = f"placements/{placement['id']}/variants/"

    default = api("post", base, {"name": "Everyone", "title": "Hello"}).json()
    outdoor = api(
        "post",
        base,
        {
            "name": "Outdoor",
            "title": "Tents",
            "link_url": "https://shop.example/tents",
            "segment": str(segment.public_id),
            "lifecycle_stage": "engagement",
            "position": 0,
        },
    )
    assert outdoor.status_code == 201, outdoor.content
    assert outdoor.json()["segment"] == {"id": str(segment.public_id), "name": "Outdoor lovers"}
    assert outdoor.json()["is_default"] is False and default["is_default"] is True

    listed = api("get", f"placements/{placement['id']}/").json()
    assert [v["name"] for v in listed["variants"]] == ["Outdoor", "Everyone"]
    assert [v["position"] for v in listed["variants"]] == [0, 1]


def test_it_changes_moves_deactivates_and_deletes_a_variant(api, banner) -> None:
    base = f"placements/{banner.placement.public_id}/variants/"
    url = f"{base}{banner.onboarding.public_id}/"
    changed = api("patch", url, {"title": "Welcome back", "position": 0, "active": False})
    assert changed.status_code == 200, changed.content
    assert changed.json()["title"] == "Welcome back" and changed.json()["active"] is False
    names = [v["name"] for v in api("get", base).json()]
    assert names == ["Welcome", "Everyone", "Outdoor"]

    untargeted = api("patch", f"{base}{banner.outdoor.public_id}/", {"segment": None})
    assert untargeted.json()["segment"] is None and untargeted.json()["is_default"] is True

    assert api("delete", url).status_code == 204
    assert not PlacementVariant.objects.filter(pk=banner.onboarding.pk).exists()


def test_it_changes_and_deletes_a_placement(api, banner) -> None:
    url = f"placements/{banner.placement.public_id}/"
    assert api("patch", url, {"name": "Front page"}).json()["name"] == "Front page"
    assert api("delete", url).status_code == 204
    assert not Placement.objects.filter(pk=banner.placement.pk).exists()
    assert not PlacementVariant.objects.filter(placement_id=banner.placement.pk).exists()


def test_it_lists_only_the_keys_teams_placements(api, world, banner) -> None:
    acme = api("get", "placements/").json()["results"]
    assert [(p["key"], p["name"]) for p in acme] == [("home-banner", "Home banner")]
    globex = api("get", "placements/", tenant=world.globex).json()["results"]
    assert [p["name"] for p in globex] == ["Globex banner"]
    assert [v["name"] for v in globex[0]["variants"]] == ["Globex"]


def test_it_answers_404_for_another_teams_placement_or_variant(api, world, banner) -> None:
    theirs = f"placements/{banner.globex.public_id}/"
    their_variant = f"{theirs}variants/{banner.globex_default.public_id}/"
    mixed = f"placements/{banner.placement.public_id}/variants/{banner.globex_default.public_id}/"
    for method, url, body in [
        ("get", theirs, None),
        ("patch", theirs, {"name": "Mine"}),
        ("delete", theirs, None),
        ("get", f"{theirs}variants/", None),
        ("post", f"{theirs}variants/", {"name": "x", "title": "x"}),
        ("get", their_variant, None),
        ("patch", their_variant, {"title": "Mine"}),
        ("delete", their_variant, None),
        ("get", mixed, None),
        ("get", "placements/not-a-uuid/", None),
    ]:
        response = api(method, url, body)
        assert response.status_code == 404, (method, url)
        assert "Globex" not in response.content.decode()
    assert Placement.objects.get(pk=banner.globex.pk).name == "Globex banner"
    assert PlacementVariant.objects.filter(pk=banner.globex_default.pk).exists()


def test_it_refuses_another_teams_segment_as_a_target(api, world, banner) -> None:
    theirs = segment_create(tenant=world.globex, name="Globex VIPs", rules=outdoor_rules())
    response = api(
        "post",
        f"placements/{banner.placement.public_id}/variants/",
        {"name": "Sneaky", "title": "x", "segment": str(theirs.public_id)},
    )
    assert fields(response) == {"segment": ["No such segment."]}


def test_it_names_every_bad_field(api, banner) -> None:
    bad = fields(api("post", "placements/", {"key": "Home Banner!", "name": ""}))
    assert set(bad) == {"key", "name"}
    taken = fields(api("post", "placements/", {"key": "home-banner", "name": "Again"}))
    assert taken == {"key": ["Another placement has this key."]}
    base = f"placements/{banner.placement.public_id}/variants/"
    bad = fields(
        api(
            "post",
            base,
            {
                "name": "Everyone",
                "title": "",
                "link_url": "javascript:alert(1)",
                "image_url": "data:image/png;base64,xx",
                "lifecycle_stage": "sleeping",
                "position": -1,
            },
        )
    )
    assert set(bad) == {"title", "link_url", "image_url", "lifecycle_stage", "position"}
    bad = fields(
        api(
            "post",
            base,
            {"name": "Everyone", "title": "t", "link_url": "javascript:alert(1)", "image_url": "x"},
        )
    )
    assert set(bad) == {"link_url", "image_url"}
    taken = fields(api("post", base, {"name": "Everyone", "title": "t"}))
    assert taken == {"name": ["This placement has a variant of this name already."]}


def test_it_refuses_without_a_secret_key(client, banner) -> None:
    assert client.get("/api/v1/placements/").status_code == 401


def test_it_documents_every_operation_in_the_schema(client) -> None:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/placements/"]) >= {"get", "post"}
    assert set(paths["/api/v1/placements/{public_id}/"]) >= {"get", "patch", "delete"}
    assert set(paths["/api/v1/placements/{public_id}/variants/"]) >= {"get", "post"}
    assert set(paths["/api/v1/placements/{public_id}/variants/{variant_id}/"]) >= {
        "get",
        "patch",
        "delete",
    }


def test_it_lists_in_as_many_queries_whatever_the_placements(api, world, banner) -> None:
    def queries() -> int:
        api("get", "placements/")  # the same start: the connection's scope set by a request
        with CaptureQueriesContext(connection) as context:
            assert api("get", "placements/").status_code == 200
        return len(context)

    one = queries()
    for n in range(3):
        placement = placement_create(tenant=world.acme, key=f"slot-{n}", name=f"Slot {n}")
        variant_create(tenant=world.acme, placement=placement, name="A", title="a")
        variant_create(
            tenant=world.acme, placement=placement, name="B", title="b", segment=banner.segment
        )
    assert queries() == one
