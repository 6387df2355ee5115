"""Converting an existing database keeps every event, dedupe and timeline (issue 17's acceptance):
migration 0012 run on a database that has events (several teams, several months, one dated
decades back and one years ahead), and run backwards.

The migrations run as `migrate` runs them (MigrationExecutor, then the post_migrate signal that
installs row-level security and the tenant keys); rows are written with the models as they were
at 0011."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audience import partitions, selectors
from audience.models import Contact, Event, EventKey
from audience.partitions import month_add, partition_name
from audience.segment_spec import parse_call
from audience.services import calls_record
from core.pagination import keyset_page
from tenants.rls import POLICY, table_states

BEFORE = ("audience", "0011_contact_search_upper_columns")
postgresql = connection.vendor == "postgresql"


def migrate(target: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)
    return executor


@pytest.fixture
def at_0011(transactional_db: None) -> Iterator[Any]:
    """The schema at audience 0011 (what 0012 converts); the historical models' registry.
    Afterwards the schema is the current one again, for the tests that follow."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    months = {p.name for p in partitions.partitions_list()}
    executor = migrate([BEFORE])
    yield executor.loader.project_state(BEFORE).apps
    migrate(latest)
    # The months this test's rows made go again (with the rows, which the test's flush would
    # delete anyway): later tests find the partitions a new database has.
    for partition in partitions.partitions_list():
        if partition.name not in months:
            partitions.partition_drop(partition.name)


def _events() -> dict[int, tuple[Any, ...]]:
    """Every event by id (the columns 0012 leaves as they were, read the same either side)."""
    columns = ("tenant_id", "contact_id", "name", "occurred_at", "message_id", "properties")
    return {pk: tuple(rest) for pk, *rest in Event.objects.values_list("id", *columns)}


def _timeline(tenant: Any, contact_id: int) -> list[list[int]]:
    """The contact's timeline as the profile shows it: pages of 4, by event id."""
    contact = Contact.objects.get(pk=contact_id)
    pages, cursor = [], None
    while True:
        page = keyset_page(
            selectors.event_list(tenant=tenant, contact=contact),
            field="occurred_at",
            cursor=cursor,
            size=4,
        )
        pages.append([e.pk for e in page.rows])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _track(message_id: str, when: datetime) -> Any:
    return parse_call(
        {
            "type": "track",
            "userId": "ann",
            "event": "Product Viewed",
            "messageId": message_id,
            "timestamp": when.isoformat().replace("+00:00", "Z"),
        }
    )


def _sequence_next() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audience_event', 'id')")
        (sequence,) = cursor.fetchone()
        cursor.execute(f"SELECT last_value FROM {sequence}")
        return cursor.fetchone()[0]


def test_converting_keeps_every_event_dedupe_and_timeline(world: Any, at_0011: Any) -> None:
    old = at_0011
    OldContact, OldEvent = old.get_model("audience", "Contact"), old.get_model("audience", "Event")
    OldIdentity = old.get_model("audience", "Identity")
    now = timezone.now()
    ann = OldContact.objects.create(tenant_id=world.acme.pk, user_id="ann", email="ann@x.org")
    OldIdentity.objects.create(tenant_id=world.acme.pk, contact=ann, kind="user_id", value="ann")
    bob = OldContact.objects.create(tenant_id=world.globex.pk, user_id="bob", email="bob@x.org")
    far_past = datetime(2001, 5, 17, 8, 0, tzinfo=UTC)
    far_ahead = month_add(now, 30) + timedelta(days=2)
    times = [
        month_add(now, -back) + timedelta(days=day, hours=9) for back in range(6) for day in (0, 9)
    ]
    times = [t for t in times if t <= now] + [far_past, far_ahead]
    rows = [
        OldEvent(
            tenant_id=tenant.pk,
            contact=contact,
            name="Product Viewed",
            properties={"n": n},
            occurred_at=when,
            message_id=f"m-{n}",  # the same ids in both teams: unique per team
            source="api",
        )
        for n, when in enumerate(times)
        for tenant, contact in ((world.acme, ann), (world.globex, bob))
    ]
    OldEvent.objects.bulk_create(rows)
    # An id handed out and gone (a rolled-back insert, an erased contact): never given again.
    OldEvent.objects.filter(pk=max(r.pk for r in rows)).delete()
    before, before_next = _events(), max(r.pk for r in rows) + 1
    timeline = _timeline(world.acme, ann.pk)
    assert len(before) == 2 * len(times) - 1 and sum(map(len, timeline)) == len(times)

    migrate([("audience", "0012_event_partitions")])

    assert _events() == before  # every event, with its id
    assert _timeline(world.acme, ann.pk) == timeline
    keys = set(EventKey.objects.values_list("tenant_id", "message_id", "occurred_at"))
    assert keys == {(t, m, when) for t, _, _, when, m, _ in before.values()}
    if postgresql:
        _assert_partitioned(before, now, far_past, far_ahead)
    # A message stored before the conversion is still refused; a new one gets a new id.
    again = calls_record(tenant=world.acme, calls=[_track("m-3", times[3])])
    assert (again.stored, again.duplicates) == (0, 1)
    new = calls_record(tenant=world.acme, calls=[_track("m-new", now)])
    assert new.stored == 1 and new.event_ids[0] not in before
    if postgresql:  # the sequence goes on: not even a deleted row's id comes back
        assert new.event_ids[0] >= before_next  # (SQLite's table rebuild restarts at max + 1)

    migrate([BEFORE])  # backwards: one plain table again

    after = _events()
    assert after == {**before, new.event_ids[0]: after[new.event_ids[0]]}
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'audience_event'")
            assert cursor.fetchone()[0] == "r"
        assert _sequence_next() >= new.event_ids[0]
    # The (tenant, message_id) constraint is back, so a repeat is refused by the table itself.
    with pytest.raises(IntegrityError), transaction.atomic():
        OldEvent.objects.create(
            tenant_id=world.acme.pk,
            contact_id=ann.pk,
            name="Again",
            occurred_at=now,
            message_id="m-3",
        )


def _assert_partitioned(
    before: dict[int, tuple[Any, ...]], now: datetime, far_past: datetime, far_ahead: datetime
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tableoid::regclass::text FROM audience_event")
        where = dict(cursor.fetchall())
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'audience_event'::regclass"
        )
        indexes = dict(cursor.fetchall())
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'audience_event'::regclass AND contype = 'p'"
        )
        (primary_key,) = cursor.fetchone()
    for pk, (_, _, _, when, _, _) in before.items():
        expected = (
            "audience_event_default" if when in (far_past, far_ahead) else partition_name(when)
        )
        assert where[pk] == expected, (pk, when)
    assert primary_key == "PRIMARY KEY (tenant_id, id, occurred_at)"
    # Partitioned indexes ('I'), under their old names.
    assert indexes["event_contact_time_idx"] == indexes["event_name_time_cover_idx"] == "I"
    assert table_states()["audience_event"] == {
        "enabled": True,
        "forced": True,
        "policies": [POLICY],
    }
    # From the oldest month holding data (a row decades back waits in the default partition
    # and makes no partitions) to three months ahead.
    oldest = min(when for _, _, _, when, _, _ in before.values() if when != far_past)
    assert partitions.partitions_list()[0].name == partition_name(oldest)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(month_add(now, 3))])
        assert cursor.fetchone()[0] is not None
