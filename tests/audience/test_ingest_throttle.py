"""The tracking doors' rate per write key (/v1/*): over it, 429 with Retry-After in Segment's
shape, which the SDKs retry; other keys go on."""

from __future__ import annotations

import json

import pytest
import time_machine

from audience.models import InboxBatch
from tenants import services
from tests.factories import basic

pytestmark = pytest.mark.django_db

START = 1_800_000_000.0  # a minute boundary


@pytest.fixture
def keys(world, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    settings.WAYFARER_THROTTLE_RATES = {**settings.WAYFARER_THROTTLE_RATES, "tracking": "3/m"}
    return {
        t.slug: services.api_key_create(tenant=t, kind="write", name="site")[1]
        for t in (world.acme, world.globex)
    }


def post(client, path: str, body: object, key: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": basic(key)} if key else {}
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def track(n: int) -> dict[str, object]:
    return {"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": f"m{n}"}


def test_it_answers_429_with_retry_after_once_a_write_key_is_over_its_rate(client, keys) -> None:
    with time_machine.travel(START + 20, tick=False):
        answers = [post(client, "/v1/track", track(n), keys["acme"]) for n in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused["Retry-After"] == "40"  # the rest of the minute
    assert refused.json() == {
        "success": False,
        "code": "throttled",
        "message": "Too many requests for this write key; retry in 40 s.",
    }
    # A browser's SDK may read the answer and its Retry-After across origins.
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in refused["Access-Control-Expose-Headers"]
    assert InboxBatch.objects.count() == 3  # the refused call was not stored


def test_it_counts_every_door_and_way_of_sending_the_key_together(client, keys) -> None:
    with time_machine.travel(START, tick=False):
        assert post(client, "/v1/b", {"batch": [track(1)]}, keys["acme"]).status_code == 200
        # navigator.sendBeacon cannot set headers: the key comes in the body.
        beacon = {**track(2), "writeKey": keys["acme"]}
        assert post(client, "/v1/t", beacon).status_code == 200
        key_answer = client.get("/v1/push/key", HTTP_AUTHORIZATION=basic(keys["acme"]))
        assert key_answer.status_code == 200
        assert post(client, "/v1/page", track(3), keys["acme"]).status_code == 429
        refused = client.get("/v1/push/key", HTTP_AUTHORIZATION=basic(keys["acme"]))
        assert refused.status_code == 429 and refused.json()["code"] == "throttled"


def test_it_limits_each_write_key_on_its_own(client, keys) -> None:
    with time_machine.travel(START, tick=False):
        for n in range(3):
            post(client, "/v1/track", track(n), keys["acme"])
        assert post(client, "/v1/track", track(9), keys["acme"]).status_code == 429
        assert post(client, "/v1/track", track(9), keys["globex"]).status_code == 200
    with time_machine.travel(START + 60, tick=False):  # the next window
        assert post(client, "/v1/track", track(10), keys["acme"]).status_code == 200


def test_it_answers_401_not_429_to_a_wrong_key(client, keys) -> None:
    with time_machine.travel(START, tick=False):
        for n in range(5):
            answer = post(client, "/v1/track", track(n), keys["acme"][:-2] + "xx")
            assert answer.status_code == 401


def test_it_lets_a_shops_normal_traffic_through_by_default(client, world) -> None:
    # The default rate is 1,000 requests/s per write key over 10 s: a busy shop's burst passes.
    raw = services.api_key_create(tenant=world.acme, kind="write", name="site")[1]
    with time_machine.travel(START, tick=False):
        answers = {post(client, "/v1/track", track(n), raw).status_code for n in range(300)}
    assert answers == {200}
