"""Set-based writes for ingestion: the few statements a batch of events costs, whatever its size.

PostgreSQL gets fast paths: one statement whose many values travel as a single JSON document
that PostgreSQL unpacks (`jsonb_array_elements_text`, `jsonb_to_recordset`). One text parameter
costs psycopg nothing to send, where an array of a hundred strings costs about a millisecond of
Python quoting. Other databases (SQLite, the embedded demo) use the ORM's bulk methods, which say
the same thing more slowly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any, NamedTuple, cast

import orjson
from django.db import connection, transaction
from django.db.models import Field, Q

from audience.models import Contact, Event, EventKey, Identity
from core.db import json_text, raw_cursor


class EventRow(NamedTuple):
    tenant_id: int
    contact_id: int
    type: str
    name: str
    properties: dict[str, Any]
    context: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    message_id: str
    source: str


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def message_ids_stored(*, tenant_id: int, message_ids: Sequence[str]) -> set[str]:
    """Which of `message_ids` the tenant has already stored (their keys, EventKey)."""
    if not _postgresql():
        found = EventKey.objects.filter(tenant_id=tenant_id, message_id__in=message_ids)
        return set(found.values_list("message_id", flat=True))
    with connection.wrap_database_errors, raw_cursor() as cursor:
        # `= ANY(ARRAY(…))` makes the ids an index condition on the key's primary key in every
        # plan; a join or `IN (SELECT …)` leaves the planner free to hash-join a scan of every
        # key of the tenant, which it does while the table's statistics are stale.
        cursor.execute(
            "SELECT message_id FROM audience_eventkey WHERE tenant_id = %s"
            " AND message_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))",
            [tenant_id, json_text(list(message_ids))],
            prepare=True,
        )
        return {row[0] for row in cursor.fetchall()}


def identities_load_locked(
    *, tenant_id: int, keys: Iterable[tuple[str, str]]
) -> list[tuple[str, str, Contact]]:
    """(kind, value, contact) for each of `keys` that exists, one object per contact, the
    contacts locked FOR UPDATE in primary-key order (so concurrent batches lock in one order)."""
    keys = list(keys)
    contacts: dict[int, Contact] = {}
    if not _postgresql():
        wanted = Q()
        for kind in (Identity.Kind.USER_ID, Identity.Kind.ANONYMOUS_ID):
            values = [value for k, value in keys if k == kind]
            if values:
                wanted |= Q(kind=kind, value__in=values)
        identities = Identity.objects.filter(wanted, tenant_id=tenant_id).select_related("contact")
        return [
            (i.kind, i.value, contacts.setdefault(i.contact_id, i.contact))
            for i in identities.order_by("contact_id")
        ]
    fields = Contact._meta.concrete_fields
    json_at = [n for n, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    columns = ", ".join(f'c."{f.column}"' for f in fields)
    with connection.wrap_database_errors, raw_cursor() as cursor:
        # Joined to the wanted ids, so each is one probe of the (tenant, kind, value) index.
        cursor.execute(
            f"SELECT i.kind, i.value, {columns}"
            " FROM jsonb_to_recordset(%s::jsonb) AS k(kind text, value text)"
            " JOIN audience_identity i"
            " ON i.tenant_id = %s AND i.kind = k.kind AND i.value = k.value"
            " JOIN audience_contact c ON c.id = i.contact_id"
            " ORDER BY c.id FOR UPDATE OF c",
            [json_text([{"kind": kind, "value": value} for kind, value in keys]), tenant_id],
            prepare=True,
        )
        rows = cursor.fetchall()
    names = [f.attname for f in fields]
    found = []
    for kind, value, *values in rows:
        contact = contacts.get(values[0])
        if contact is None:
            for n in json_at:  # Django has psycopg hand jsonb over as text
                if isinstance(values[n], str):
                    values[n] = orjson.loads(values[n])
            contact = contacts[values[0]] = Contact.from_db(connection.alias, names, values)
        found.append((kind, value, contact))
    return found


def events_insert(rows: Sequence[EventRow]) -> list[int]:
    """Insert events and their message ids' keys (EventKey) together; returns the events' ids
    in the order of `rows`. A message id that is already stored raises IntegrityError, as an
    INSERT would."""
    if not rows:
        return []
    if not _postgresql():
        # Two statements here: one transaction for both (the caller's, as `_events_store` always
        # runs in one; a savepoint would cost two more statements per batch).
        with nullcontext() if connection.in_atomic_block else transaction.atomic():
            EventKey.objects.bulk_create(
                [
                    EventKey(
                        tenant_id=r.tenant_id, message_id=r.message_id, occurred_at=r.occurred_at
                    )
                    for r in rows
                ]
            )
            events = Event.objects.bulk_create([Event(**row._asdict()) for row in rows])
        return [event.pk for event in events]
    # One INSERT … SELECT … RETURNING for any number of rows, keys included. Not COPY, though it
    # is faster for thousands of rows (~1.3x here): PostgreSQL refuses COPY FROM into a table
    # under row-level security (tenants/rls.py), which every events table is.
    return _events_insert(rows, ", ".join(EventRow._fields))


_EVENT_RECORD = (
    "tenant_id bigint, contact_id bigint, type text, name text, properties jsonb,"
    " context jsonb, occurred_at timestamptz, received_at timestamptz, message_id text,"
    " source text"
)


def _events_insert(rows: Sequence[EventRow], columns: str) -> list[int]:
    document = json_text([row._asdict() for row in rows])
    with connection.wrap_database_errors, raw_cursor() as cursor:
        # One statement: the keys' insert is a data-modifying CTE, so a repeated message id
        # fails the whole statement (unique violation on the key), events and keys alike.
        cursor.execute(
            f"WITH v AS (SELECT {columns}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v({_EVENT_RECORD})),"
            " k AS (INSERT INTO audience_eventkey (tenant_id, message_id, occurred_at)"
            " SELECT tenant_id, message_id, occurred_at FROM v)"
            f" INSERT INTO audience_event ({columns}) SELECT {columns} FROM v"
            " RETURNING tenant_id, message_id, id",
            [document],
            prepare=True,
        )
        # Message ids are unique per tenant; a batch may hold several tenants' events.
        ids = {(tenant_id, message_id): pk for tenant_id, message_id, pk in cursor.fetchall()}
    return [ids[row.tenant_id, row.message_id] for row in rows]


def contacts_update(*, tenant_id: int, contacts: Sequence[Contact], fields: Sequence[str]) -> None:
    """Write `fields` of the tenant's stored contacts with one statement."""
    if not contacts or not fields:
        return
    if not _postgresql():
        Contact.objects.bulk_update(contacts, fields)
        return
    # `fields` name concrete columns of the contact (get_field's other results have no column).
    model_fields = [cast("Field[Any, Any]", Contact._meta.get_field(name)) for name in fields]
    # The record type: base types only, varchar(255) would just repeat the model's checks.
    record = ", ".join(
        [
            '"id" bigint',
            *(f'"{f.column}" {str(f.db_type(connection)).split("(")[0]}' for f in model_fields),
        ]
    )
    assignments = ", ".join(f'"{f.column}" = v."{f.column}"' for f in model_fields)
    attnames = [f.attname for f in model_fields]
    document = json_text([{"id": c.pk, **{n: getattr(c, n) for n in attnames}} for c in contacts])
    with connection.wrap_database_errors, raw_cursor() as cursor:
        cursor.execute(
            f"UPDATE audience_contact AS c SET {assignments}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v({record})"
            " WHERE c.tenant_id = %s AND c.id = v.id",
            [document, tenant_id],
            prepare=True,
        )
