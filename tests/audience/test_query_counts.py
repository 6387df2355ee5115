"""The ingest worker's promise (audience/inbox.py, audience/bulk.py, audience/identity.py): a
drain costs the same few statements whatever it records — one message or fifty, new visitors,
returning customers or visitors merged into customers, one request or many.

Each test sends the same story at several sizes through /v1/batch and counts every statement the
drain sends (tests/statements.py sees the prepared statements and the COPY, which Django's query
log does not). On PostgreSQL a handful of events is inserted with one INSERT … RETURNING instead
of a sequence read and a COPY, so one message may cost a statement less, never more.

The pins are per database; a change that adds a statement to every drain updates them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from audience.inbox import inbox_drain
from audience.models import Contact, Event, Identity
from tenants import services
from tests.statements import assert_same_statements, statements_by_size

pytestmark = pytest.mark.django_db

SIZES = (1, 20, 50)  # messages (or requests) per drain


@pytest.fixture
def send(client: Any, world: Any) -> Callable[[list[dict[str, Any]]], None]:
    """send(messages): one /v1/batch request from the acme site, accepted, not yet recorded."""
    key = services.api_key_create(tenant=world.acme, kind="write", name="site")[1]
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    def _send(messages: list[dict[str, Any]]) -> None:
        response = client.post(
            "/v1/batch",
            data=json.dumps({"batch": messages}),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )
        assert response.status_code == 200, response.content

    return _send


def track(message_id: str, **ids: str) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "messageId": message_id, **ids}


def identify(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "identify", "messageId": message_id, **fields}


def customers(send: Callable[[list[dict[str, Any]]], None], prefix: str, n: int) -> None:
    """n known customers (user ids `<prefix>-<i>`, with an email), already recorded."""
    send(
        [
            identify(f"{prefix}-{i}", userId=f"{prefix}-{i}", traits={"email": f"{prefix}{i}@x.io"})
            for i in range(n)
        ]
    )
    inbox_drain()


def drained(n: int) -> Callable[[], None]:
    """The counted step: one drain, which records n messages."""

    def step() -> None:
        assert inbox_drain().stored == n

    return step


def test_it_records_new_visitors_with_the_same_statements_however_many(send) -> None:
    def new_visitors(n: int) -> Callable[[], None]:
        send([track(f"new-{n}-{i}", anonymousId=f"new-{n}-{i}") for i in range(n)])
        return drained(n)

    found = statements_by_size(new_visitors, SIZES)

    assert Contact.objects.count() == sum(SIZES)
    # +1 on SQLite since issue 17: the message ids' keys (EventKey) are a second INSERT there;
    # PostgreSQL inserts them in the events' statement.
    # +3 on PostgreSQL (+4 on SQLite) with issue 15: analytics' rollups in the events'
    # transaction (audience.registry.events_stored): the team's lock, the chunk's day rows with
    # their flags, the metrics' upsert (SQLite reads the flags apart and has no lock).
    assert_same_statements(found, pinned={"postgresql": 15, "sqlite": 15}, fewer_up_to=1)


def test_it_records_returning_customers_with_the_same_statements_however_many(send) -> None:
    def returning_customers(n: int) -> Callable[[], None]:
        customers(send, f"back{n}", n)
        # Each comes back on a new device (a new id on a stored contact), changes a trait and
        # views a product (profile writes).
        send(
            [
                message
                for i in range(n)
                for message in (
                    identify(
                        f"again-{n}-{i}",
                        userId=f"back{n}-{i}",
                        anonymousId=f"phone-{n}-{i}",
                        traits={"firstName": f"Ann {i}"},
                    ),
                    track(f"view-{n}-{i}", userId=f"back{n}-{i}"),
                )
            ]
        )
        return drained(2 * n)

    found = statements_by_size(returning_customers, SIZES)

    assert Contact.objects.count() == sum(SIZES)
    assert Identity.objects.filter(value__startswith="phone-").count() == sum(SIZES)
    # +1 on SQLite since issue 17: the message ids' keys (EventKey) are a second INSERT there;
    # PostgreSQL inserts them in the events' statement.
    # +3 on PostgreSQL (+4 on SQLite) with issue 15: analytics' rollups in the events'
    # transaction (audience.registry.events_stored): the team's lock, the chunk's day rows with
    # their flags, the metrics' upsert (SQLite reads the flags apart and has no lock).
    assert_same_statements(found, pinned={"postgresql": 15, "sqlite": 15}, fewer_up_to=1)


def test_it_merges_visitors_into_customers_with_the_same_statements_however_many(send) -> None:
    def visitors_signing_in(n: int) -> Callable[[], None]:
        customers(send, f"buyer{n}", n)
        send([track(f"browse-{n}-{i}", anonymousId=f"visitor-{n}-{i}") for i in range(n)])
        inbox_drain()
        # Each visitor signs in: their anonymous contact is merged into the customer's.
        send(
            [
                identify(f"login-{n}-{i}", userId=f"buyer{n}-{i}", anonymousId=f"visitor-{n}-{i}")
                for i in range(n)
            ]
        )
        return drained(n)

    found = statements_by_size(visitors_signing_in, SIZES)

    assert Contact.objects.count() == sum(SIZES)  # every visitor merged, with their history
    histories = Event.objects.filter(message_id__startswith="browse-")
    assert sorted(histories.values_list("message_id", "contact__user_id")) == sorted(
        (f"browse-{n}-{i}", f"buyer{n}-{i}") for n in SIZES for i in range(n)
    )
    # +2 since journeys: the merge locks the absorbed profiles' enrollments (to move them), and
    # deleting the absorbed profiles looks for enrollments to cascade to. +1 since campaigns:
    # deleting them deletes their campaign recipients.
    # Since issue 17: a merge moves the absorbed contacts' orders (+1), Django's cascade from
    # them to Order finds nothing left (+1), and on SQLite the keys are a second INSERT (+1).
    # +8 with issue 15: the merge moves the absorbed contacts' rollup rows (lock, read, delete,
    # insert, metrics) before the rollups' own three for the chunk.
    # +2 with issue 16: survey answers move to the surviving contact (one UPDATE), and deleting
    # the absorbed profiles cascades to the answers table (one DELETE, finding nothing left).
    assert_same_statements(found, pinned={"postgresql": 37, "sqlite": 36}, fewer_up_to=1)


def test_it_records_many_requests_with_the_same_statements_as_one(send) -> None:
    def requests(n: int) -> Callable[[], None]:
        for i in range(n):  # /v1/track-sized requests: one inbox row each
            send([track(f"req-{n}-{i}", anonymousId=f"req-{n}-{i}")])
        return drained(n)

    # Fewer rows than the drain's first claim (50), so one claim takes them all.
    found = statements_by_size(requests, (1, 20, 40))

    # +1 on SQLite since issue 17: the message ids' keys (EventKey) are a second INSERT there;
    # PostgreSQL inserts them in the events' statement.
    # +3 on PostgreSQL (+4 on SQLite) with issue 15: analytics' rollups in the events'
    # transaction (audience.registry.events_stored): the team's lock, the chunk's day rows with
    # their flags, the metrics' upsert (SQLite reads the flags apart and has no lock).
    assert_same_statements(found, pinned={"postgresql": 15, "sqlite": 15}, fewer_up_to=1)
