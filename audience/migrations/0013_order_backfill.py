"""The order ledger from the orders already stored: every "Order Completed" event becomes an
Order row (audience/orders.py), so order metrics, RFM groups and recommendations read the same
history after this release as before it, and keep it when retention removes the events.

Data only. PostgreSQL: set-based, one INSERT … SELECT per batch of a tenant's orders (keyset on
occurred_at, id, along the (tenant, name, occurred_at) index), the value and currency computed
in SQL by audience.orders' expressions. SQLite: the ORM, the value computed by order_value.
Idempotent (an order stored already is skipped), and not atomic: each batch commits on its own,
so millions of orders hold no transaction open for the whole run, and a run that was
interrupted starts again without harm. Backwards it does nothing (0012 drops the table).

Orders that the previous release stores after this ran and before the new code serves
ingestion are not in the ledger: run the migration in the same window as 0012 (it copies the
events table, so ingestion waits anyway), or apply the backfill statement again afterwards.
"""

from django.db import migrations

from audience.orders import (
    ORDER_EVENT,
    currency_sql,
    order_currency,
    order_value,
    value_sql,
)

BATCH = 10_000
COLUMNS = "tenant_id, contact_id, message_id, occurred_at, value, currency, properties"
BACKFILL = f"""
WITH batch AS (
    SELECT tenant_id, contact_id, message_id, occurred_at, properties, id
    FROM audience_event
    WHERE tenant_id = %(tenant)s AND name = %(name)s
      AND occurred_at >= %(after)s AND (occurred_at, id) > (%(after)s, %(after_id)s)
    ORDER BY occurred_at, id
    LIMIT %(batch)s
), stored AS (
    INSERT INTO audience_order ({COLUMNS})
    SELECT tenant_id, contact_id, message_id, occurred_at, {value_sql("properties")},
           {currency_sql("properties")}, properties
    FROM batch
    ON CONFLICT (tenant_id, message_id) DO NOTHING
)
SELECT occurred_at, id FROM batch ORDER BY occurred_at DESC, id DESC LIMIT 1
"""


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _backfill_postgresql(schema_editor.connection)
    else:
        _backfill_orm(apps)


def _backfill_postgresql(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants_tenant ORDER BY id")
        tenants = [pk for (pk,) in cursor.fetchall()]
        for tenant in tenants:
            after, after_id = "-infinity", 0
            while True:
                cursor.execute(
                    BACKFILL,
                    {
                        "tenant": tenant,
                        "name": ORDER_EVENT,
                        "after": after,
                        "after_id": after_id,
                        "batch": BATCH,
                    },
                )
                last = cursor.fetchone()
                if last is None:
                    break
                after, after_id = last


def _backfill_orm(apps):
    Event = apps.get_model("audience", "Event")
    Order = apps.get_model("audience", "Order")
    after = 0
    while True:
        batch = list(
            Event.objects.filter(name=ORDER_EVENT, pk__gt=after)
            .order_by("pk")
            .only("tenant_id", "contact_id", "message_id", "occurred_at", "properties")[:BATCH]
        )
        if not batch:
            break
        Order.objects.bulk_create(
            [
                Order(
                    tenant_id=event.tenant_id,
                    contact_id=event.contact_id,
                    message_id=event.message_id,
                    occurred_at=event.occurred_at,
                    value=order_value(event.properties),
                    currency=order_currency(event.properties),
                    properties=event.properties,
                )
                for event in batch
            ],
            ignore_conflicts=True,
        )
        after = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audience", "0012_event_partitions")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
