"""Concurrent batches against a live server: the way a busy shop's SDKs and browsers really send.

Many requests at once mention the same visitors, some of them new, some signing in, some merging
two profiles. Whatever the interleaving, every request must succeed, every event must be stored
once and every person must end up as exactly one contact holding their whole history.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import urllib.request
from typing import Any

import pytest

from audience.models import Contact, Event, Identity
from audience.signals import contacts_merged
from tenants import services

VISITORS = 24
THREADS = 6
BATCHES_PER_THREAD = 6
EVENTS_PER_BATCH = 30


def _post(url: str, key: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _message(rng: random.Random, visitor: int, n: str) -> dict[str, Any]:
    """A visitor's event: anonymous browsing, or — for even visitors — signed in as their user
    id, which joins (and, for visitors seen on their phone too, merges) their profiles."""
    anonymous_id = f"browser-{visitor}" if rng.random() < 0.7 else f"phone-{visitor}"
    message: dict[str, Any] = {
        "type": "track",
        "event": rng.choice(["Product Viewed", "Product Added", "Products Searched"]),
        "anonymousId": anonymous_id,
        "properties": {"sku": f"SKU-{rng.randrange(5)}"},
        "messageId": n,
    }
    if visitor % 2 == 0 and rng.random() < 0.3:
        message["userId"] = f"user-{visitor}"
    return message


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_contact_per_person_under_concurrent_batches(
    live_server, world, ingest_inline
) -> None:
    key = services.api_key_create(tenant=world.acme, kind="write", name="load")[1]
    url = f"{live_server.url}/v1/batch"
    rng = random.Random(7)
    bodies = [
        [
            {
                "batch": [
                    _message(rng, rng.randrange(VISITORS), f"m-{t}-{b}-{i}")
                    for i in range(EVENTS_PER_BATCH)
                ]
            }
            for b in range(BATCHES_PER_THREAD)
        ]
        for t in range(THREADS)
    ]
    # Every even visitor finally signs in on both devices, so their profiles must become one.
    final = [
        {
            "type": "identify",
            "userId": f"user-{v}",
            "anonymousId": f"{d}-{v}",
            "messageId": f"f{d}{v}",
        }
        for v in range(0, VISITORS, 2)
        for d in ("browser", "phone")
    ]
    merges: list[dict[int, int]] = []

    def on_merge(sender: object, tenant: object, merged: dict[int, int], **_: object) -> None:
        merges.append(merged)

    statuses: list[int | str] = []
    start = threading.Barrier(THREADS)

    def send(mine: list[dict[str, Any]]) -> None:
        start.wait()
        for body in mine:
            try:
                statuses.append(_post(url, key, body))
            except Exception as exc:
                statuses.append(repr(exc))

    contacts_merged.connect(on_merge)
    try:
        threads = [threading.Thread(target=send, args=(mine,)) for mine in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert _post(url, key, {"batch": final}) == 200
    finally:
        contacts_merged.disconnect(on_merge)

    assert statuses == [200] * (THREADS * BATCHES_PER_THREAD)
    sent = THREADS * BATCHES_PER_THREAD * EVENTS_PER_BATCH + len(final)
    # Every call sent, once (not the product's own facts: the lifecycle stages it computed).
    assert Event.objects.filter(tenant=world.acme).exclude(source="lifecycle").count() == sent
    # Odd visitors never signed in: one anonymous contact per device they used. Even visitors
    # are one contact each, carrying every event of both devices.
    for visitor in range(VISITORS):
        devices = Identity.objects.filter(
            tenant=world.acme,
            kind="anonymous_id",
            value__in=[f"browser-{visitor}", f"phone-{visitor}"],
        )
        owners = set(devices.values_list("contact_id", flat=True))
        if visitor % 2 == 0:
            person = Contact.objects.get(tenant=world.acme, user_id=f"user-{visitor}")
            assert owners == {person.pk}
            mine = [
                m
                for t in bodies
                for b in t
                for m in b["batch"]
                if m["anonymousId"].endswith(f"-{visitor}")
            ]
            stored = set(person.events.values_list("message_id", flat=True))
            assert {m["messageId"] for m in mine} <= stored
        else:
            assert len(owners) == devices.count()
            assert not Contact.objects.filter(tenant=world.acme, user_id=f"user-{visitor}").exists()
    used = {m["anonymousId"] for t in bodies for b in t for m in b["batch"]}
    odd_devices = [d for d in used if int(d.rsplit("-", 1)[1]) % 2]
    assert Contact.objects.filter(tenant=world.acme).count() == VISITORS // 2 + len(odd_devices)
    # Merged-away contacts were announced before they went, and are gone.
    absorbed = {pk for merged in merges for pk in merged}
    assert absorbed and not Contact.objects.filter(pk__in=absorbed).exists()
