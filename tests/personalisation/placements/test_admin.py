"""Operators' admin of placements: their teams' rows only, read-only but for a variant's
`active` (a marketer's decision in that team, as on its pages)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from personalisation.placements.models import PlacementVariant

pytestmark = pytest.mark.django_db

BASE = "/admin/placements/placementvariant/"


def staff(login: Any, user: Any) -> Any:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="placements"))
    return login(user)


def test_operators_see_their_teams_variants_and_may_take_one_down(world, login, banner) -> None:
    client = staff(login, world.dave)  # a marketer of acme
    listing = client.get(BASE).content.decode()
    assert "Outdoor" in listing and "Globex" not in listing
    assert client.get(f"{BASE}{banner.globex_default.pk}/change/").status_code == 404
    placements = client.get("/admin/placements/placement/").content.decode()
    assert "home-banner" in placements and "Globex banner" not in placements

    client.post(f"{BASE}{banner.outdoor.pk}/change/", {"active": ""})
    assert PlacementVariant.objects.get(pk=banner.outdoor.pk).active is False
    assert PlacementVariant.objects.get(pk=banner.outdoor.pk).title == "Tents from 89 €"

    viewer = staff(login, world.bob)
    viewer.post(f"{BASE}{banner.outdoor.pk}/change/", {"active": "on"})
    assert PlacementVariant.objects.get(pk=banner.outdoor.pk).active is False
