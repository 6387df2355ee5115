"""Push endpoints go only where they should (issue 19, item 3): a subscription whose endpoint is
not public https is refused with a 400 naming the field, and a stored one, or one whose name
rebinds to a private address after it was checked, is never requested: its message fails with
the reason and the subscription is turned off. Real sockets on loopback; the DNS answers come
from the guard's resolver seam."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from audience.models import Contact, Event
from core import outbound
from messaging.models import Delivery, PushSubscription, Template
from messaging.push import push_subscription_save
from tests.core.test_outbound_guard import PUBLIC, Listener
from tests.messaging.push_receiver import PushReceiver
from tests.messaging.test_push import (  # noqa: F401  (fixtures)
    a_browser,
    decide,
    mara,
    post,
    push_template,
    send,
    subscribe,
    write_keys,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def guarded(settings: Any) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False


@pytest.fixture
def dns(monkeypatch: Any) -> dict[str, list[list[str]]]:
    """dns[host]: the resolver's answers for host, one per lookup (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}

    def resolve(host: str, port: int) -> list[str]:
        queue = answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(outbound, "_resolve", resolve)
    return answers


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


@pytest.mark.parametrize(
    "endpoint,says",
    [
        ("http://127.0.0.1:{port}/push/1", "https://"),
        ("https://127.0.0.1:{port}/push/1", "127.0.0.1, a loopback address"),
        ("https://[::ffff:10.0.0.1]/push/1", "a private address inside an IPv6 address"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://internal.example/push/1", "resolves to 10.0.0.5, a private address"),
    ],
)
def test_it_refuses_to_subscribe_an_endpoint_that_is_not_public_https(
    client: Any,
    world: Any,
    write_keys: dict[str, str],  # noqa: F811
    dns: dict[str, Any],
    listener: Listener,
    endpoint: str,
    says: str,
) -> None:
    dns["internal.example"] = [["10.0.0.5"]]
    with PushReceiver() as receiver:
        body: dict[str, Any] = {
            "anonymousId": "anon-1",
            "subscription": a_browser(receiver, world.acme).to_json(),
        }
    body["subscription"]["endpoint"] = endpoint.format(port=listener.port)

    response = post(client, "subscribe", body, write_keys["acme"])

    assert response.status_code == 400
    assert response.json()["field"] == "subscription.endpoint"
    assert says in response.json()["message"]
    assert not PushSubscription.objects.exists()
    assert not Contact.objects.exists()
    assert not Event.objects.exists()


def test_it_never_requests_a_stored_endpoint_the_guard_refuses(
    settings: Any,
    push_template: Template,  # noqa: F811
    mara: Contact,  # noqa: F811
) -> None:
    with PushReceiver() as receiver:
        # Stored before the guard existed (or while private addresses were allowed).
        settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
        subscribe(receiver, mara)
        settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
        delivery = decide(mara, push_template)

        report = send()

        assert receiver.attempts == []
    assert report.failed == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "endpoint refused" in delivery.reason
    assert "http" in delivery.reason  # a plain-http endpoint: not https
    subscription = PushSubscription.objects.get()
    assert not subscription.active
    assert subscription.deactivated_reason.startswith("endpoint refused: ")


def test_it_never_connects_to_an_endpoint_whose_name_rebinds_to_loopback(
    dns: dict[str, Any],
    listener: Listener,
    push_template: Template,  # noqa: F811
    mara: Contact,  # noqa: F811
) -> None:
    # Public when the browser subscribed; loopback when the sender connects.
    dns["push.rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    with PushReceiver() as receiver:
        browser = a_browser(receiver, mara.tenant)
    push_subscription_save(
        tenant=mara.tenant,
        contact=mara,
        endpoint=f"https://push.rebind.example:{listener.port}/push/1",
        p256dh=browser.p256dh,
        auth=browser.auth,
    )
    delivery = decide(mara, push_template)

    report = send()

    assert report.failed == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "push.rebind.example resolves to 127.0.0.1, a loopback address" in delivery.reason
    assert not PushSubscription.objects.get().active
    assert listener.accepted == 0


def test_it_says_loudly_in_healthz_that_private_addresses_are_allowed(
    client: Any, settings: Any
) -> None:
    assert client.get("/healthz").json()["outbound"] == {"allow_private": False}

    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
    body = client.get("/healthz").json()

    assert body["outbound"] == {"allow_private": True}
    assert any("WAYFARER_OUTBOUND_ALLOW_PRIVATE is on" in w for w in body["warnings"])
