"""Repair times stored before the edge refused them (core/storable.py): an event sent with a
timestamp at the far end of the calendar (9999-12-31T23:59:59-12:00 is year 10000 in UTC) was
stored by PostgreSQL, which Python then could not read back, breaking the tenant's contact list,
events API and export and setting aside every later call of that contact.

An event's time outside the window becomes the time it was received; a contact's last-seen time
becomes that of its latest readable event. Only PostgreSQL could store such times (on SQLite,
Django's conversion to UTC failed first). Set-based, so cheap when nothing needs repair."""

from __future__ import annotations

from typing import Any

from django.db import migrations

# The window of core/storable.py, as of this migration (a migration must not follow later edits).
EARLIEST = "1900-01-01 00:00:00+00"
LATEST = "9998-12-31 23:59:59.999999+00"


def repair(connection: Any) -> None:
    if connection.vendor != "postgresql":
        return
    outside = "NOT ({0} BETWEEN %(lo)s::timestamptz AND %(hi)s::timestamptz)"
    window = {"lo": EARLIEST, "hi": LATEST}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audience_event SET occurred_at = CASE WHEN "
            + outside.format("received_at")
            + " THEN now() ELSE received_at END, received_at = CASE WHEN "
            + outside.format("received_at")
            + " THEN now() ELSE received_at END WHERE "
            + outside.format("occurred_at")
            + " OR "
            + outside.format("received_at"),
            window,
        )
        cursor.execute(
            "UPDATE audience_contact AS c SET last_seen_at = ("
            " SELECT max(e.occurred_at) FROM audience_event AS e"
            " WHERE e.tenant_id = c.tenant_id AND e.contact_id = c.id"
            ") WHERE " + outside.format("c.last_seen_at"),
            window,
        )


def forwards(apps: Any, schema_editor: Any) -> None:
    repair(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audience", "0009_event_type_group")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
