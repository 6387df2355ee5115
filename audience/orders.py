"""The order ledger: each "Order Completed" event's facts as an `Order` row, written in the
same transaction as the event and kept when retention removes the raw events, so what is read
off a customer's orders (segments' order metrics and RFM groups, "bought together"
recommendations, revenue rollups) stays true for their whole history.

An order's value is the first of its total / revenue / value properties that is a number the
ledger can hold (a finite number under 10^13 once rounded to 6 places, see VALUE_LIMIT);
anything else (text, true/false, a nested object) is skipped, and an order with none has no
value (it counts as 0 spent). `order_value` says it in Python (ingestion on
every database), `value_sql` in PostgreSQL for set-based work (the backfill); one list of keys
and one limit make both, and a test holds them to the same answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection

from audience.bulk import EventRow
from audience.models import Order
from core.db import json_text, raw_cursor

ORDER_EVENT = "Order Completed"  # Segment's e-commerce spec name
VALUE_KEYS = ("total", "revenue", "value")
VALUE_PLACES = 6
# decimal(20, 6) holds 14 digits before the point; one fewer, because SQLite reads the column
# back through a float of 15 digits, which may round a value just under 10^14 up to it and
# then fail to fit (and no order is worth 10^13 in any currency).
VALUE_LIMIT = Decimal(10) ** 13
_QUANTUM = Decimal(1).scaleb(-VALUE_PLACES)
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def order_value(properties: Mapping[str, Any]) -> Decimal | None:
    """The first of total / revenue / value that is a number the ledger can hold, rounded to
    6 places (halves away from zero, as PostgreSQL rounds), or None."""
    if not isinstance(properties, Mapping):  # JSON that is no object has no keys
        return None
    for key in VALUE_KEYS:
        raw = properties.get(key)
        # bool is an int in Python but true/false in JSON: not a number.
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        if isinstance(raw, float) and not math.isfinite(raw):
            continue
        # repr: the shortest text that reads back as the float (19.99, not 19.989999…).
        number = Decimal(raw) if isinstance(raw, int) else Decimal(repr(raw))
        if abs(number) >= VALUE_LIMIT:
            continue
        # No float under 10^13 rounds up to it: its last places are far coarser than 10^-6.
        return number.quantize(_QUANTUM, rounding=ROUND_HALF_UP)
    return None


def order_currency(properties: Mapping[str, Any]) -> str:
    """The order's currency code when it sends one (three letters, upper-cased), else ""."""
    raw = properties.get("currency") if isinstance(properties, Mapping) else None
    if isinstance(raw, str) and _CURRENCY.fullmatch(raw):
        return raw.upper()
    return ""


def value_sql(properties: str) -> str:
    """`order_value` as a PostgreSQL expression over the jsonb column `properties`."""
    tests = []
    for key in VALUE_KEYS:
        rounded = f"round(({properties} ->> '{key}')::numeric, {VALUE_PLACES})"
        # Nested CASEs: an AND may test its second half first, and text fails the cast.
        tests.append(
            f"CASE WHEN jsonb_typeof({properties} -> '{key}') = 'number'"
            f" THEN CASE WHEN abs({rounded}) < {VALUE_LIMIT} THEN {rounded} END END"
        )
    return f"COALESCE({', '.join(tests)})"


def currency_sql(properties: str) -> str:
    """`order_currency` as a PostgreSQL expression over the jsonb column `properties`."""
    code = f"({properties} ->> 'currency')"
    return (
        f"CASE WHEN jsonb_typeof({properties} -> 'currency') = 'string'"
        f" AND {code} ~ '^[A-Za-z]{{3}}$' THEN upper({code}) ELSE '' END"
    )


def orders_record(rows: Sequence[EventRow]) -> int:
    """Record the orders among events being stored (call it in the events' transaction, after
    they are inserted). An order whose message id the ledger holds already is left as it is:
    retention removes an event and its dedupe key but keeps its order, so a client sending an
    old message again stores the event anew and must not count the order twice. Returns the
    orders stored now."""
    orders: dict[tuple[int, str], EventRow] = {}
    for row in rows:
        if row.name == ORDER_EVENT:
            orders.setdefault((row.tenant_id, row.message_id), row)
    if not orders:
        return 0
    if connection.vendor == "postgresql":
        return _orders_insert(list(orders.values()))
    stored = 0
    tenants = {tenant_id for tenant_id, _ in orders}
    for tenant_id in tenants:
        wanted = {m for t, m in orders if t == tenant_id}
        known = set(
            Order.objects.filter(tenant_id=tenant_id, message_id__in=wanted).values_list(
                "message_id", flat=True
            )
        )
        new = [_order(orders[tenant_id, m]) for m in wanted - known]
        Order.objects.bulk_create(new, ignore_conflicts=True)
        stored += len(new)
    return stored


def _order(row: EventRow) -> Order:
    return Order(
        tenant_id=row.tenant_id,
        contact_id=row.contact_id,
        message_id=row.message_id,
        occurred_at=row.occurred_at,
        value=order_value(row.properties),
        currency=order_currency(row.properties),
        properties=row.properties,
    )


_ORDER_RECORD = (
    "tenant_id bigint, contact_id bigint, message_id text, occurred_at timestamptz,"
    " value numeric, currency text, properties jsonb"
)
_ORDER_COLUMNS = "tenant_id, contact_id, message_id, occurred_at, value, currency, properties"


def _orders_insert(rows: Sequence[EventRow]) -> int:
    # Values computed here (order_value), not in SQL, so every database stores the same.
    document = json_text(
        [
            {
                "tenant_id": row.tenant_id,
                "contact_id": row.contact_id,
                "message_id": row.message_id,
                "occurred_at": row.occurred_at,
                "value": order_value(row.properties),  # as text: exact
                "currency": order_currency(row.properties),
                "properties": row.properties,
            }
            for row in rows
        ]
    )
    with connection.wrap_database_errors, raw_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audience_order ({_ORDER_COLUMNS}) SELECT {_ORDER_COLUMNS}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v({_ORDER_RECORD})"
            " ON CONFLICT (tenant_id, message_id) DO NOTHING",
            [document],
            prepare=True,
        )
        return cursor.rowcount
