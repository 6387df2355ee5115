"""Writing webhook messages: the outbox side.

Events: `events_stored` (audience.registry) runs inside the transaction that stores them, so
the messages for them commit or roll back with the events — none lost, none doubled (one per
endpoint and event: `idempotency_key` "event:<event id>", unique per endpoint).

It runs on ingestion's hot path, for every team. A team's subscribed types (the union over its
enabled endpoints) are kept in Django's cache (Redis in production), emptied when an endpoint
changes (webhooks/receivers.py), and set to "none" when a team is created: a team without
endpoints, or whose events match none of its types, costs a cache read and no query (a cold
cache costs one query per team every CACHE_SECONDS). A chunk with matching events costs three
statements (the endpoints, locked FOR KEY SHARE so that a concurrent delete waits for this
transaction; the contacts; one insert).

Conversions: journeys announce them after commit (`journeys.signals.conversion_recorded`);
`conversion_messages_write` writes theirs in a transaction of its own, once per enrollment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils.timezone import now

from audience.models import Contact
from audience.selectors import STAGE_CHANGED
from core.db import json_text, raw_cursor
from journeys.models import Journey
from tenants.models import Tenant
from webhooks.models import EventType, WebhookEndpoint, WebhookMessage

log = logging.getLogger(__name__)

# The audience event names each type stands for (messaging's outcomes, segments' entries,
# audience's lifecycle stages; names are those apps' facts, repeated here as strings because
# messaging/outcomes.py is not a public module).
EVENT_TYPES: Mapping[str, str] = {
    "Email Sent": EventType.MESSAGE_SENT,
    "Push Sent": EventType.MESSAGE_SENT,
    "Email Opened": EventType.MESSAGE_OPENED,
    "Email Link Clicked": EventType.MESSAGE_CLICKED,
    "Push Clicked": EventType.MESSAGE_CLICKED,
    "Email Bounced": EventType.MESSAGE_BOUNCED,
    "Unsubscribed": EventType.CONTACT_UNSUBSCRIBED,
    "Segment Entered": EventType.SEGMENT_ENTERED,
    STAGE_CHANGED: EventType.CONTACT_STAGE_CHANGED,
}

CACHE_SECONDS = 300  # bounds how long a lost invalidation (a race with a reader) could last


def _cache_key(tenant: Tenant) -> str:
    # The public id, not the pk: a key can never outlive its team into another's.
    return f"webhooks:subscribed:{tenant.public_id}"


def subscribed_types(*, tenant: Tenant) -> frozenset[str]:
    """The event types any enabled endpoint of the team subscribes to (cached)."""
    key = _cache_key(tenant)
    try:
        cached = cache.get(key)
    except Exception:  # the cache is down: ask the database, as if it were empty
        log.warning("webhooks: cache unavailable", exc_info=True)
        cached = None
    if cached is not None:
        return frozenset(cached)
    types: set[str] = set()
    for chosen in WebhookEndpoint.objects.filter(tenant=tenant, enabled=True).values_list(
        "event_types", flat=True
    ):
        types.update(chosen or [])
    try:
        cache.set(key, sorted(types), CACHE_SECONDS)
    except Exception:
        log.warning("webhooks: cache unavailable", exc_info=True)
    return frozenset(types)


def subscriptions_forget(*, tenant: Tenant) -> None:
    """Empty the team's cached types now and again once the current transaction commits (a
    reader in between may have cached what it saw before the commit)."""

    def forget() -> None:
        try:
            cache.delete(_cache_key(tenant))
        except Exception:
            log.warning("webhooks: cache unavailable", exc_info=True)

    forget()
    transaction.on_commit(forget)


def subscriptions_none(*, tenant: Tenant) -> None:
    """A new team has no endpoints: say so in the cache, so its first events cost no query."""
    try:
        cache.set(_cache_key(tenant), [], CACHE_SECONDS)
    except Exception:
        log.warning("webhooks: cache unavailable", exc_info=True)


def payload_build(*, type: str, at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """A message's body as the Standard Webhooks spec recommends: type, timestamp, data."""
    return {"type": type, "timestamp": at.isoformat(), "data": dict(data)}


def _endpoints_locked(tenant: Tenant, types: Iterable[str]) -> list[tuple[int, frozenset[str]]]:
    """(id, types) of the team's enabled endpoints subscribed to any of `types`. On PostgreSQL
    the rows are locked FOR KEY SHARE: a delete waits until this transaction ends (its messages'
    foreign key is checked at commit), while ingests and edits go on alongside."""
    wanted = set(types)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, event_types FROM webhooks_webhookendpoint"
                " WHERE tenant_id = %s AND enabled ORDER BY id FOR KEY SHARE",
                [tenant.pk],
            )
            rows = [(pk, _json_list(chosen)) for pk, chosen in cursor.fetchall()]
    else:
        rows = list(
            WebhookEndpoint.objects.filter(tenant=tenant, enabled=True)
            .order_by("pk")
            .values_list("pk", "event_types")
        )
    return [(pk, frozenset(chosen or [])) for pk, chosen in rows if wanted & set(chosen or [])]


def _json_list(value: object) -> list[str]:
    if isinstance(value, str):  # Django has psycopg hand jsonb over as text
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _contacts(tenant: Tenant, ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """{contact id: (public id, user_id, email)}."""
    return {
        pk: (str(public_id), user_id, email)
        for pk, public_id, user_id, email in Contact.objects.filter(
            tenant=tenant, pk__in=set(ids)
        ).values_list("pk", "public_id", "user_id", "email")
    }


def events_stored(*, tenant: Tenant, rows: Sequence[Any], ids: list[int]) -> None:
    """audience.registry's hook: a message per subscribed endpoint for each stored event whose
    name has a webhook type. Inside the storing transaction."""
    if not rows:
        return
    subscribed = subscribed_types(tenant=tenant)
    if not subscribed:
        return
    matching = [
        (event_id, row, EVENT_TYPES[row.name])
        for event_id, row in zip(ids, rows, strict=True)
        if row.name in EVENT_TYPES and EVENT_TYPES[row.name] in subscribed
    ]
    if not matching:
        return
    endpoints = _endpoints_locked(tenant, {t for _, _, t in matching})
    if not endpoints:
        return
    contacts = _contacts(tenant, (row.contact_id for _, row, _ in matching))
    stamp = now()
    messages = []
    for event_id, row, type_ in matching:
        public_id, user_id, email = contacts.get(row.contact_id, ("", "", ""))
        payload = payload_build(
            type=type_,
            at=stamp,
            data={
                "contact_id": public_id,
                "user_id": user_id,
                "email": email,
                "event": row.name,
                "properties": row.properties,
                "occurred_at": row.occurred_at.isoformat(),
                "source": row.source,
            },
        )
        messages += [
            WebhookMessage(
                tenant=tenant,
                endpoint_id=endpoint_id,
                type=type_,
                payload=payload,
                idempotency_key=f"event:{event_id}",
                next_attempt_at=stamp,
                created_at=stamp,
                updated_at=stamp,
            )
            for endpoint_id, chosen in endpoints
            if type_ in chosen
        ]
    _insert(messages)


def _insert(messages: list[WebhookMessage]) -> None:
    """Insert new messages in one statement; a repeat (the same event announced twice for an
    endpoint) is left out by the unique key. Wakes the sender after commit."""
    if not messages:
        return
    if connection.vendor == "postgresql":
        _insert_postgresql(messages)
    else:
        WebhookMessage.objects.bulk_create(messages, ignore_conflicts=True)
    transaction.on_commit(_wake, robust=True)


def _insert_postgresql(messages: list[WebhookMessage]) -> None:
    # The rows travel as one JSON document that PostgreSQL unpacks (as audience/bulk.py does):
    # the ORM's bulk_create binds 19 parameters a row, whose quoting cost more than the insert
    # itself (measured: about half of a 50-message chunk's time in the hook).
    rows = [
        {
            "tenant_id": m.tenant_id,
            "endpoint_id": m.endpoint_id,
            "public_id": str(m.public_id),
            "type": m.type,
            "payload": m.payload,
            "idempotency_key": m.idempotency_key,
        }
        for m in messages
    ]
    stamp = messages[0].created_at
    with connection.wrap_database_errors, raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO webhooks_webhookmessage (tenant_id, endpoint_id, public_id, type,"
            " payload, idempotency_key, status, attempts, attempts_before_replay,"
            " next_attempt_at, last_error, created_at, updated_at)"
            " SELECT r.tenant_id, r.endpoint_id, r.public_id, r.type, r.payload,"
            " r.idempotency_key, 'pending', 0, 0, %s, '', %s, %s"
            " FROM jsonb_to_recordset(%s::jsonb) AS r(tenant_id bigint, endpoint_id bigint,"
            " public_id uuid, type text, payload jsonb, idempotency_key text)"
            " ON CONFLICT DO NOTHING",
            [stamp, stamp, stamp, json_text(rows)],
        )


def _wake() -> None:
    from webhooks.tasks import send_due  # tasks import the sender, which imports this module

    send_due.delay()


def conversion_messages_write(
    *,
    tenant_id: int,
    enrollment_public_id: object,
    journey_id: int,
    contact_id: int,
    converted_at: datetime,
    revenue: Decimal | None,
    event: str,
) -> int:
    """A `conversion` message per enabled endpoint of the team subscribed to it, once per
    enrollment. Returns how many endpoints it was written for."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or EventType.CONVERSION not in subscribed_types(tenant=tenant):
        return 0
    with transaction.atomic():
        endpoints = _endpoints_locked(tenant, [EventType.CONVERSION])
        if not endpoints:
            return 0
        public_id, user_id, email = _contacts(tenant, [contact_id]).get(contact_id, ("", "", ""))
        journey = Journey.objects.filter(tenant=tenant, pk=journey_id).only("public_id", "name")
        found = journey.first()
        stamp = now()
        payload = payload_build(
            type=EventType.CONVERSION,
            at=stamp,
            data={
                "contact_id": public_id,
                "user_id": user_id,
                "email": email,
                "journey_id": str(found.public_id) if found else "",
                "journey": found.name if found else "",
                "enrollment_id": str(enrollment_public_id),
                "event": event,
                "revenue": str(revenue) if revenue is not None else None,
                "converted_at": converted_at.isoformat(),
            },
        )
        _insert(
            [
                WebhookMessage(
                    tenant=tenant,
                    endpoint_id=endpoint_id,
                    type=EventType.CONVERSION,
                    payload=payload,
                    idempotency_key=f"conversion:{enrollment_public_id}",
                    next_attempt_at=stamp,
                    created_at=stamp,
                    updated_at=stamp,
                )
                for endpoint_id, _ in endpoints
            ]
        )
    return len(endpoints)
