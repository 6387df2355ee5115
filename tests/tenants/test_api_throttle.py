"""The REST API's rate per secret key: over it, 429 with Retry-After in the API's error shape."""

from __future__ import annotations

import pytest
import time_machine

pytestmark = pytest.mark.django_db

START = 1_800_000_000.0  # a minute boundary


@pytest.fixture
def small_rate(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WAYFARER_THROTTLE_RATES = {**settings.WAYFARER_THROTTLE_RATES, "api": "3/m"}


def test_it_answers_429_with_retry_after_once_a_key_is_over_its_rate(api, small_rate) -> None:
    with time_machine.travel(START + 50, tick=False):
        answers = [api("get", "contacts/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused["Retry-After"] == "10"
    assert refused.json() == {
        "error": {
            "code": "throttled",
            "message": "Request was throttled. Expected available in 10 seconds.",
        }
    }


def test_it_limits_each_key_on_its_own(api, world, small_rate) -> None:
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            api("get", "contacts/")
        assert api("get", "contacts/").status_code == 429
        assert api("get", "contacts/", tenant=world.globex).status_code == 200


def test_it_answers_401_not_429_without_a_key(client, small_rate) -> None:
    with time_machine.travel(START, tick=False):
        answers = {client.get("/api/v1/contacts/").status_code for _ in range(5)}
    assert answers == {401}


def test_it_never_limits_the_public_schema(client, small_rate) -> None:
    with time_machine.travel(START, tick=False):
        answers = {client.get("/api/v1/schema/").status_code for _ in range(5)}
    assert answers == {200}
