"""Template previews are limited per signed-in user (each one renders a tenant's Liquid)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.messaging.test_views import HTMX, PREVIEW, email_fields

pytestmark = pytest.mark.django_db


def test_it_refuses_previews_past_the_users_rate(login: Any, world: Any, settings: Any) -> None:
    settings.WAYFARER_THROTTLE_RATES = {
        **settings.WAYFARER_THROTTLE_RATES,
        "template_preview": "3/m",
    }
    dave = login(world.dave)
    answers = [dave.post(PREVIEW, email_fields(), **HTMX).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    # Another member of the team has a rate of their own.
    alice = login(world.alice)
    assert alice.post(PREVIEW, email_fields(), **HTMX).status_code == 200


def test_it_previews_as_fast_as_someone_types_by_default(login: Any, world: Any) -> None:
    # The editor posts 400 ms after each pause in typing: 2.5 a second at most.
    dave = login(world.dave)
    answers = {dave.post(PREVIEW, email_fields(), **HTMX).status_code for _ in range(60)}
    assert answers == {200}
