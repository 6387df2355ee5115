"""Events partitioned by month (PostgreSQL): partitions are made ahead of the clock and for the
rows that waited in the default one, dropped whole, carry the table's row security; the queries
that read a window of time (a segment's "did X in the last 30 days", a timeline page, the events
API's since/until) read only the months in it. Dedupe by message id holds across months, on both
databases."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audience import partitions
from audience.bulk import EventRow, events_insert
from audience.models import Contact, Event, EventKey
from audience.partitions import month_add, month_start, partition_name
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, events_record
from audience.tasks import partitions_maintain
from segments.compiler import Compiler
from segments.services import segment_rules_check
from tenants.rls import POLICY

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)
MONTHS = 14  # of history in `history`


@pytest.fixture
def ann(world: Any) -> Contact:
    return Contact.objects.create(tenant=world.acme, email="ann@example.com", user_id="ann")


@pytest.fixture
def history(world: Any, ann: Contact) -> datetime:
    """Three "Product Viewed" events of ann's in each of the last MONTHS months and this one
    (the 2nd, 3rd and 4th of each month, so a month's three stay in it), plus one of globex's
    each month; the months before this one made by `partitions_ensure`. Returns now."""
    now = timezone.now()
    bob = Contact.objects.create(tenant=world.globex, email="bob@example.com")
    for back in range(MONTHS + 1):
        start = month_add(now, -back)
        days = [start + timedelta(days=d, hours=12) for d in (1, 2, 3)]
        events_record(
            tenant=world.acme,
            facts=[
                Fact(ann.pk, "Product Viewed", key=f"{back}-{n}", source="t", occurred_at=day)
                for n, day in enumerate(days)
                if day <= now
            ],
        )
        events_record(
            tenant=world.globex,
            facts=[Fact(bob.pk, "Product Viewed", key=f"{back}", source="t", occurred_at=days[0])],
        )
    partitions.partitions_ensure()
    return now


def _partition_of_rows() -> dict[str, int]:
    """{partition: rows} as the rows themselves say where they are."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM audience_event GROUP BY 1 ORDER BY 1"
        )
        return dict(cursor.fetchall())


def scanned(sql: str, params: Any = ()) -> set[str]:
    """The tables a query read, by EXPLAIN (ANALYZE, FORMAT JSON): partitions the planner pruned
    are not in the plan, and those pruned while it ran show as never executed (no loops)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = raw if isinstance(raw, list) else json.loads(raw)
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node and node.get("Actual Loops", 0) > 0:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def months_of(found: set[str]) -> set[str]:
    return {name for name in found if name.startswith("audience_event_p")}


def _event_select(queries: CaptureQueriesContext) -> str:
    [sql] = [q["sql"] for q in queries.captured_queries if 'FROM "audience_event"' in q["sql"]]
    return sql


# --- partitions ----------------------------------------------------------------------------------


def _security_states() -> list[tuple[str, bool, bool, list[str]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " array(SELECT polname FROM pg_policy WHERE polrelid = c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'audience_event'::regclass"
        )
        return cursor.fetchall()


@postgresql_only
def test_a_fresh_database_has_this_month_and_three_ahead_from_the_migration() -> None:
    now = timezone.now()
    names = [p.name for p in partitions.partitions_list()]
    assert names[-4:] == [partition_name(month_add(now, n)) for n in range(4)]
    assert partitions.partitions_ensure() == []  # nothing missing
    # Made by the migration before the policies existed; given them right after `migrate`.
    for name, enabled, forced, policies in _security_states():
        assert (enabled, forced, policies) == (True, True, [POLICY]), name


@postgresql_only
def test_months_that_waited_in_the_default_partition_get_their_own(history: datetime) -> None:
    now = history
    rows = _partition_of_rows()
    assert "audience_event_default" not in rows  # every row moved to its month's
    for back in range(1, MONTHS + 1):
        assert rows[partition_name(month_add(now, -back))] == 4  # ann's three, bob's one
    listed = partitions.partitions_list()
    assert [p.start for p in listed] == sorted(p.start for p in listed)  # oldest first
    oldest = listed[0]
    assert oldest.name == partition_name(month_add(now, -MONTHS))
    assert (oldest.start, oldest.end) == (month_add(now, -MONTHS), month_add(now, -MONTHS + 1))
    assert oldest.bytes > 0
    assert Event.objects.count() == EventKey.objects.count()  # every event kept, with its key
    assert partitions.partitions_ensure() == []  # a second run has nothing to do


@postgresql_only
def test_the_hourly_task_keeps_three_months_ahead(history: datetime) -> None:
    later = month_add(history, 2) + timedelta(days=3)
    with time_machine.travel(later, tick=False):
        partitions_maintain()
    names = {p.name for p in partitions.partitions_list()}
    assert {partition_name(month_add(later, n)) for n in range(4)} <= names


@postgresql_only
def test_a_row_dated_before_any_kept_month_waits_in_the_default_partition(
    world: Any, ann: Contact
) -> None:
    """No team keeps events more than MONTHS_KEPT months: a row older than that gets no
    partition (retention deletes it), so a stray date cannot make a hundred partitions."""
    ancient = month_add(timezone.now(), -partitions.MONTHS_KEPT - 6)
    events_record(
        tenant=world.acme,
        facts=[Fact(ann.pk, "Old", key="old", source="t", occurred_at=ancient)],
    )
    before = {p.name for p in partitions.partitions_list()}

    assert partitions.partitions_ensure() == []

    assert {p.name for p in partitions.partitions_list()} == before
    assert _partition_of_rows() == {"audience_event_default": 1}


@postgresql_only
def test_dropping_a_month_removes_its_rows_and_nothing_else(history: datetime) -> None:
    now = history
    month = partition_name(month_add(now, -MONTHS))
    before = Event.objects.count()

    with transaction.atomic():
        assert partitions.partition_drop(month) is True
    assert partitions.partition_drop(month) is False  # gone already: nothing to do

    assert Event.objects.count() == before - 4
    assert month not in {p.name for p in partitions.partitions_list()}
    assert not Event.objects.filter(occurred_at__lt=month_add(now, -MONTHS + 1)).exists()
    assert partitions.partitions_ensure() == []  # the oldest month now is the next one
    with pytest.raises(ValueError):
        partitions.partition_drop("audience_event_default")


@postgresql_only
def test_every_partition_carries_the_tables_row_security(history: datetime) -> None:
    states = _security_states()
    assert len(states) == MONTHS + 4 + 1  # the months, three ahead, the default
    for name, enabled, forced, policies in states:
        assert (enabled, forced, policies) == (True, True, [POLICY]), name


def test_partitions_are_no_ops_on_sqlite() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's behaviour")
    assert partitions.partitions_list() == []
    assert partitions.partitions_ensure() == []
    partitions.partition_drop("audience_event_p2020_01")


def test_month_start_is_the_first_instant_of_the_utc_month() -> None:
    from datetime import UTC
    from zoneinfo import ZoneInfo

    paris_new_year = datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 2026 in UTC
    assert month_start(paris_new_year) == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_add(paris_new_year, 1) == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_add(datetime(2027, 1, 20, tzinfo=UTC), -13) == datetime(2025, 12, 1, tzinfo=UTC)


# --- pruning -------------------------------------------------------------------------------------


@postgresql_only
def test_a_did_it_in_the_last_30_days_condition_reads_only_those_months(
    world: Any, history: datetime
) -> None:
    now = history
    tree = segment_rules_check(
        tenant=world.acme,
        rules={
            "type": "group",
            "match": "all",
            "children": [
                {
                    "type": "event",
                    "event": "Product Viewed",
                    "count": {"operator": "at_least", "value": 1},
                    "window": {"last_days": 30},
                }
            ],
        },
    )
    contacts = Compiler(tenant=world.acme, now=now).contacts(tree)
    sql, params = contacts.query.sql_with_params()

    read = months_of(scanned(sql, params))

    window = {partition_name(now - timedelta(days=30)), partition_name(now)}
    assert window <= read
    older = {partition_name(month_add(now, -back)) for back in range(2, MONTHS + 1)}
    assert read.isdisjoint(older), read
    assert list(contacts.values_list("email", flat=True)) == ["ann@example.com"]


@postgresql_only
def test_a_timeline_page_reads_no_month_after_the_page(
    login: Any, world: Any, ann: Contact, history: datetime
) -> None:
    """Newest first, a page at a time: each page starts where the last ended (keyset), so the
    months after it are pruned; the first page has nothing after it to prune."""
    now = history
    client = login(world.alice)
    url = f"/t/acme/contacts/{ann.public_id}/timeline/"
    with CaptureQueriesContext(connection) as first:
        page = client.get(url).context["page"]
    with CaptureQueriesContext(connection) as second:
        more = client.get(url, {"after": page.next_cursor}).context["page"]

    shown = [e.occurred_at for e in page.rows + more.rows]
    assert shown == sorted(shown, reverse=True) and len(shown) == 3 * (MONTHS + 1)
    cursor_month = month_start(page.rows[-1].occurred_at)
    read = months_of(scanned(_event_select(second)))
    newer = {partition_name(month_add(cursor_month, n)) for n in range(1, 100)}
    assert partition_name(cursor_month) in read
    assert read.isdisjoint(newer), read
    assert partition_name(now) in months_of(scanned(_event_select(first)))


@postgresql_only
def test_the_events_api_reads_only_the_months_asked_for(
    api: Any, world: Any, history: datetime
) -> None:
    now = history
    since, until = month_add(now, -6), month_add(now, -4)
    with CaptureQueriesContext(connection) as queries:
        response = api(
            "get", f"events/?since={since:%Y-%m-%dT%H:%M:%SZ}&until={until:%Y-%m-%dT%H:%M:%SZ}"
        )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2 * 3  # ann's of two months (bob is globex's)

    read = months_of(scanned(_event_select(queries)))

    assert read == {partition_name(since), partition_name(month_add(now, -5))}


# --- dedupe by message id ------------------------------------------------------------------------


def _track(message_id: str, when: str) -> Any:
    return parse_call(
        {
            "type": "track",
            "userId": "ann",
            "event": "Order Completed",
            "messageId": message_id,
            "timestamp": when,
        }
    )


def test_a_message_id_is_stored_once_whatever_month_its_repeat_claims(
    world: Any, ann: Contact
) -> None:
    first = calls_record(tenant=world.acme, calls=[_track("m-1", "2026-01-10T10:00:00Z")])
    # The same message again, and again dated another month (a client that resent it later).
    again = calls_record(
        tenant=world.acme,
        calls=[_track("m-1", "2026-01-10T10:00:00Z"), _track("m-1", "2026-06-10T10:00:00Z")],
    )

    assert (first.stored, again.stored, again.duplicates) == (1, 0, 2)
    assert Event.objects.filter(message_id="m-1").count() == 1
    assert EventKey.objects.filter(tenant=world.acme, message_id="m-1").count() == 1
    # Another tenant's message ids are its own.
    assert calls_record(tenant=world.globex, calls=[_track("m-1", "2026-01-10T10:00:00Z")]).stored


def test_an_insert_that_repeats_a_stored_message_id_stores_nothing(
    world: Any, ann: Contact
) -> None:
    when = timezone.now()

    def row(message_id: str, occurred: datetime) -> EventRow:
        return EventRow(
            world.acme.pk, ann.pk, "track", "X", {}, {}, occurred, when, message_id, "t"
        )

    with transaction.atomic():
        events_insert([row("a", when)])
    with pytest.raises(IntegrityError), transaction.atomic():
        events_insert([row("b", when), row("a", when - timedelta(days=90))])

    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["a"]
    assert sorted(EventKey.objects.values_list("message_id", flat=True)) == ["a"]
