"""Webhooks ride on ingestion's hot path (audience.registry.events_stored): a team without a
subscribed endpoint must cost ingestion no query, and a team with one a fixed few per chunk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience import registry
from audience.segment_spec import parse_call
from audience.services import calls_record
from tests.statements import statements
from webhooks import producing, services
from webhooks.models import WebhookMessage

pytestmark = pytest.mark.django_db


def chunk(n: int = 20) -> list[Any]:
    """A chunk of calls for known users: opens, clicks and page views."""
    names = ["Email Opened", "Email Link Clicked", "Product Viewed", "Unsubscribed"]
    return [
        parse_call(
            {
                "type": "track",
                "event": names[i % len(names)],
                "userId": f"u{i % 5}",
                "messageId": str(uuid.uuid4()),
                "properties": {"i": i},
            }
        )
        for i in range(n)
    ]


def sent(tenant: Any) -> list[str]:
    """Every statement a chunk sends (psycopg-level on PostgreSQL: raw_cursor ones too)."""
    with statements() as found:
        calls_record(tenant=tenant, calls=chunk())
    return found


def queries(tenant: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        calls_record(tenant=tenant, calls=chunk())
    return len(captured.captured_queries)


@pytest.fixture
def without_webhooks() -> Iterator[Any]:
    """Run a block with webhooks' hook unregistered (the cost of ingestion without it)."""

    class Off:
        def __enter__(self) -> None:
            registry.EVENTS_STORED.remove(producing.events_stored)

        def __exit__(self, *exc: object) -> None:
            registry.EVENTS_STORED.append(producing.events_stored)

    yield Off()


def test_a_team_without_endpoints_pays_no_query_per_chunk(
    world: Any, without_webhooks: Any, django_assert_num_queries: Any
) -> None:
    calls_record(tenant=world.acme, calls=chunk())  # the users exist; the cache is warm
    with without_webhooks:
        baseline = queries(world.acme)
    with django_assert_num_queries(baseline):
        calls_record(tenant=world.acme, calls=chunk())
    with without_webhooks:
        every = len(sent(world.acme))
    assert len(sent(world.acme)) == every
    assert not WebhookMessage.objects.exists()


def test_a_team_whose_endpoints_want_other_types_pays_no_query_either(
    world: Any, without_webhooks: Any, django_assert_num_queries: Any
) -> None:
    services.endpoint_create(
        tenant=world.acme, url="https://hooks.example.com/", event_types=["conversion"]
    )
    calls_record(tenant=world.acme, calls=chunk())
    with without_webhooks:
        baseline = queries(world.acme)
    with django_assert_num_queries(baseline):
        calls_record(tenant=world.acme, calls=chunk())
    with without_webhooks:
        every = len(sent(world.acme))
    assert len(sent(world.acme)) == every


def test_a_subscribed_team_pays_three_statements_per_chunk(
    world: Any, without_webhooks: Any
) -> None:
    services.endpoint_create(
        tenant=world.acme,
        url="https://hooks.example.com/",
        event_types=["message.opened", "message.clicked"],
    )
    calls_record(tenant=world.acme, calls=chunk())
    with without_webhooks:
        baseline = sent(world.acme)
    # the endpoints (locked FOR KEY SHARE), the contacts, one insert
    found = sent(world.acme)
    assert len(found) == len(baseline) + 3
    assert sum("webhooks_webhookmessage" in s for s in found) == 1
    assert WebhookMessage.objects.filter(tenant=world.acme).count() == 20  # 10 + 10 (twice)


def test_a_new_endpoint_is_seen_by_the_next_chunk(
    world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    calls_record(tenant=world.acme, calls=chunk())  # caches "no subscriptions"
    with django_capture_on_commit_callbacks(execute=True):  # its commit empties the cache
        services.endpoint_create(
            tenant=world.acme, url="https://hooks.example.com/", event_types=["message.opened"]
        )
    calls_record(tenant=world.acme, calls=chunk())
    assert WebhookMessage.objects.filter(type="message.opened").count() == 5
