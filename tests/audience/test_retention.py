"""Retention removes exactly what each team's setting says, and nothing a segment, a report or an
erasure depends on (audience/retention.py, docs/retention.md)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, connections, transaction

from audience import retention
from audience.models import Contact, Event, EventKey, EventRollup, Order
from audience.partitions import partitions_ensure, partitions_list, partitions_secure
from audience.retention import (
    cutoff_for,
    retention_apply,
    retention_cutoff,
    retention_months,
    retention_preview,
    rollups_build,
)
from audience.services import Fact, contact_erase, events_record
from segments import rules
from segments.compiler import segment_count

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="monthly partitions are PostgreSQL's"
)


@pytest.fixture(autouse=True)
def _secured(db: None) -> None:
    """Partitions' row security as `migrate` leaves it, before any row is written: ALTER TABLE
    (partitions_ensure's, when it is missing) refuses a table with deferred checks pending in
    the same transaction, which a test's single transaction would otherwise have."""
    partitions_secure()


def at(year: int, month: int, day: int = 10, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# --- The cutoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "months", "cutoff"),
    [
        (NOW, 3, datetime(2026, 9, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), 3, datetime(2026, 9, 1, tzinfo=UTC)),
        (
            datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC),
            3,
            datetime(2026, 8, 1, tzinfo=UTC),
        ),
        (datetime(2026, 1, 10, tzinfo=UTC), 13, datetime(2024, 12, 1, tzinfo=UTC)),
        (datetime(2026, 3, 31, 23, tzinfo=UTC), 1, datetime(2026, 2, 1, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 120, datetime(2016, 12, 1, tzinfo=UTC)),
    ],
    ids=["mid-month", "first-instant", "last-instant", "over-new-year", "one-month", "ten-years"],
)
def test_it_cuts_at_the_first_instant_of_the_month_n_months_back(now, months, cutoff) -> None:
    assert cutoff_for(months, now=now) == cutoff


def test_it_reads_the_month_in_utc_whatever_the_zone_of_now() -> None:
    # 1 December 00:30 in Berlin is still 30 November in UTC.
    berlin = datetime(2026, 12, 1, 0, 30, tzinfo=UTC) - timedelta(hours=1)
    assert cutoff_for(3, now=berlin.astimezone(UTC)) == datetime(2026, 8, 1, tzinfo=UTC)


def test_it_takes_the_teams_setting_or_the_default(world, settings) -> None:
    settings.WAYFARER_EVENT_RETENTION_MONTHS = 25
    assert retention_months(world.acme) == 25
    assert retention_cutoff(world.acme, now=NOW) == datetime(2024, 11, 1, tzinfo=UTC)
    world.acme.event_retention_months = 13
    assert retention_months(world.acme) == 13
    assert retention_cutoff(world.acme, now=NOW) == datetime(2025, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("months", [0, -1, 121], ids=["zero", "negative", "too-long"])
def test_it_refuses_a_default_that_would_remove_too_much_or_keep_forever(
    world, settings, months
) -> None:
    settings.WAYFARER_EVENT_RETENTION_MONTHS = months
    with pytest.raises(ImproperlyConfigured, match="WAYFARER_EVENT_RETENTION_MONTHS"):
        retention_months(world.acme)


@pytest.mark.parametrize(
    ("months", "ok"), [(None, True), (1, True), (120, True), (0, False), (121, False)]
)
def test_it_validates_a_teams_months(world, months, ok) -> None:
    world.acme.event_retention_months = months
    if ok:
        world.acme.full_clean()
    else:
        with pytest.raises(ValidationError) as caught:
            world.acme.full_clean()
        assert "event_retention_months" in caught.value.message_dict


@pytest.mark.django_db
def test_it_keeps_bad_months_out_of_the_database_too(world) -> None:
    from tenants.models import Tenant

    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.filter(pk=world.acme.pk).update(event_retention_months=0)


# --- A shop with history in two teams ----------------------------------------------------------


class Shop:
    """Events of two teams in shared months. acme keeps 3 months (cutoff 2026-09-01), globex
    13 (cutoff 2025-11-01):

        2010-01   both     older than any partition: the default partition   gone for both
        2025-06   both     expired for both teams                            dropped
        2026-02   both     expired for acme, kept by globex                  acme's deleted
        2026-05   acme     expired for acme; globex keeps it but has no row  dropped
        2026-10   both     kept by both
        2040-01   acme     ahead of every partition: the default partition   kept
    """

    def __init__(self, world: Any) -> None:
        self.acme, self.globex = world.acme, world.globex
        self.acme.event_retention_months = 3
        self.acme.save(update_fields=["event_retention_months"])
        self.globex.event_retention_months = 13
        self.globex.save(update_fields=["event_retention_months"])
        self.ann = Contact.objects.create(tenant=self.acme, user_id="ann", email="ann@example.com")
        self.ben = Contact.objects.create(tenant=self.acme, user_id="ben", email="ben@example.com")
        self.gus = Contact.objects.create(tenant=self.globex, user_id="gus")
        self.n = 0
        for month in [(2010, 1), (2025, 6), (2026, 2), (2026, 10)]:
            self.views(self.acme, [self.ann, self.ann, self.ben], at(*month))
            self.views(self.globex, [self.gus, self.gus], at(*month))
            self.order(self.acme, self.ann, at(*month, hour=13), 40)
            self.order(self.globex, self.gus, at(*month, hour=14), 7.5)
        self.views(self.acme, [self.ben], at(2026, 5))
        self.views(self.acme, [self.ann], at(2040, 1))
        # Either side of acme's cutoff, to the microsecond.
        self.views(self.acme, [self.ann], datetime(2026, 8, 31, 23, 59, 59, 999999, tzinfo=UTC))
        self.views(self.acme, [self.ben], datetime(2026, 9, 1, tzinfo=UTC))
        # A cart and a stage on the profile (ingestion keeps them from events).
        Contact.objects.filter(pk=self.ann.pk).update(
            lifecycle_stage="engagement", cart=[{"sku": "TENT", "quantity": 1}]
        )
        partitions_ensure(now=NOW)  # the months exist; 2010 stays in the default partition

    def views(self, tenant: Any, contacts: list[Contact], when: datetime) -> None:
        facts = []
        for contact in contacts:
            self.n += 1
            facts.append(
                Fact(
                    contact.pk,
                    "Product Viewed",
                    key=str(self.n),
                    source="t",
                    properties={"sku": "TENT"},
                    occurred_at=when,
                )
            )
        events_record(tenant=tenant, facts=facts)

    def order(self, tenant: Any, contact: Contact, when: datetime, total: float) -> None:
        self.n += 1
        events_record(
            tenant=tenant,
            facts=[
                Fact(
                    contact.pk,
                    "Order Completed",
                    key=str(self.n),
                    source="t",
                    properties={"total": total},
                    occurred_at=when,
                )
            ],
        )

    @staticmethod
    def cutoffs() -> dict[str, datetime]:
        return {
            "acme": datetime(2026, 9, 1, tzinfo=UTC),
            "globex": datetime(2025, 11, 1, tzinfo=UTC),
        }


def stored(tenant: Any) -> set[tuple[str, datetime]]:
    return set(Event.objects.filter(tenant=tenant).values_list("message_id", "occurred_at"))


def keys(tenant: Any) -> set[tuple[str, datetime]]:
    return set(EventKey.objects.filter(tenant=tenant).values_list("message_id", "occurred_at"))


def expected_rollups(
    tenant: Any, before: datetime
) -> dict[tuple[date, str], tuple[int, int, Decimal]]:
    """Hand-counted from the events and orders before `before`, as they stand now."""
    events = Event.objects.filter(tenant=tenant, occurred_at__lt=before)
    counts: Counter[tuple[date, str]] = Counter()
    people: dict[tuple[date, str], set[int]] = defaultdict(set)
    for name, when, contact_id in events.values_list("name", "occurred_at", "contact_id"):
        day = when.astimezone(UTC).date()
        counts[(day, name)] += 1
        people[(day, name)].add(contact_id)
    revenue: Counter[date] = Counter()
    for when, value in Order.objects.filter(tenant=tenant).values_list("occurred_at", "value"):
        revenue[when.astimezone(UTC).date()] += value or 0
    return {
        key: (
            n,
            len(people[key]),
            Decimal(revenue[key[0]]) if key[1] == "Order Completed" else Decimal(0),
        )
        for key, n in counts.items()
    }


def rollups(tenant: Any) -> dict[tuple[date, str], tuple[int, int, Decimal]]:
    return {
        (r.day, r.name): (r.events, r.contacts, r.revenue)
        for r in EventRollup.objects.filter(tenant=tenant)
    }


def order_segment() -> dict[str, Any]:
    return rules.validate(
        {
            "type": "group",
            "match": "all",
            "negate": False,
            "children": [
                {"type": "metric", "metric": "orders_count", "operator": "gte", "value": 3}
            ],
        }
    )


@pytest.mark.django_db
def test_it_removes_exactly_the_events_before_each_teams_cutoff_and_their_keys(world) -> None:
    shop = Shop(world)
    cutoffs = shop.cutoffs()
    before = {t.slug: stored(t) for t in (shop.acme, shop.globex)}
    assert {t.slug: keys(t) for t in (shop.acme, shop.globex)} == before

    report = retention_apply(now=NOW, batch=2)

    for tenant in (shop.acme, shop.globex):
        kept = {(m, when) for m, when in before[tenant.slug] if when >= cutoffs[tenant.slug]}
        assert stored(tenant) == kept
        assert keys(tenant) == kept  # the keys went with their events, and only they
    gone = {t.slug: len(before[t.slug]) - len(stored(t)) for t in (shop.acme, shop.globex)}
    assert report.rows_deleted == {shop.acme.pk: gone["acme"], shop.globex.pk: gone["globex"]}
    assert report.keys_deleted == gone["acme"] + gone["globex"]
    # The microsecond before the cutoff went; the cutoff itself stayed.
    acme_times = {when for _, when in stored(shop.acme)}
    assert datetime(2026, 9, 1, tzinfo=UTC) in acme_times
    assert min(acme_times) == datetime(2026, 9, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_it_writes_rollups_equal_to_what_it_removed(world) -> None:
    shop = Shop(world)
    cutoffs = shop.cutoffs()
    expected = {t.slug: expected_rollups(t, cutoffs[t.slug]) for t in (shop.acme, shop.globex)}

    retention_apply(now=NOW, batch=2)

    assert rollups(shop.acme) == expected["acme"]
    assert rollups(shop.globex) == expected["globex"]
    # e.g. acme's February: 3 views by 2 people, one order of 40.
    feb = date(2026, 2, 10)
    assert rollups(shop.acme)[(feb, "Product Viewed")] == (3, 2, Decimal(0))
    assert rollups(shop.acme)[(feb, "Order Completed")] == (1, 1, Decimal(40))
    assert (feb, "Product Viewed") not in rollups(shop.globex)  # globex keeps February


@pytest.mark.django_db
def test_it_keeps_orders_profiles_and_what_segments_read_off_orders(world) -> None:
    shop = Shop(world)
    orders = set(
        Order.objects.values_list("tenant_id", "contact_id", "message_id", "occurred_at", "value")
    )
    profiles = list(Contact.objects.order_by("pk").values())
    loyal = segment_count(tenant=shop.acme, rules=order_segment(), now=NOW)
    assert loyal == 1  # ann: four orders, three of them older than acme keeps

    retention_apply(now=NOW, batch=2)

    assert (
        set(
            Order.objects.values_list(
                "tenant_id", "contact_id", "message_id", "occurred_at", "value"
            )
        )
        == orders
    )
    assert list(Contact.objects.order_by("pk").values()) == profiles
    assert segment_count(tenant=shop.acme, rules=order_segment(), now=NOW) == loyal


@pytest.mark.django_db
def test_it_is_idempotent(world) -> None:
    shop = Shop(world)
    retention_apply(now=NOW, batch=2)
    after_first = (stored(shop.acme), stored(shop.globex), rollups(shop.acme), rollups(shop.globex))
    partitions = [p.name for p in partitions_list()]

    again = retention_apply(now=NOW, batch=2)

    assert (again.rows_deleted, again.keys_deleted, again.partitions_dropped) == ({}, 0, [])
    assert (
        stored(shop.acme),
        stored(shop.globex),
        rollups(shop.acme),
        rollups(shop.globex),
    ) == after_first
    assert [p.name for p in partitions_list()] == partitions


@postgresql_only
@pytest.mark.django_db
def test_it_drops_a_month_only_when_no_team_that_keeps_it_has_rows_there(world) -> None:
    shop = Shop(world)
    names = {p.name for p in partitions_list()}
    assert {
        "audience_event_p2025_06",
        "audience_event_p2026_02",
        "audience_event_p2026_05",
    } <= names

    report = retention_apply(now=NOW, batch=2)

    # June 2025 had rows of both teams, both past it; July-October 2025 were empty and past
    # both; May and August 2026 held only acme's rows, and globex, which keeps them, had none.
    assert sorted(report.partitions_dropped) == [
        *(f"audience_event_p2025_{m:02}" for m in range(6, 11)),
        "audience_event_p2026_05",
        "audience_event_p2026_08",
    ]
    left = {p.name for p in partitions_list()}
    assert "audience_event_p2025_06" not in left and "audience_event_p2026_05" not in left
    # February stays for globex, which keeps it; acme's rows there went in batches.
    assert "audience_event_p2026_02" in left
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, count(*) FROM audience_event_p2026_02 GROUP BY tenant_id")
        assert dict(cursor.fetchall()) == {shop.globex.pk: 3}
        # The default partition: 2010's rows went, 2040's stayed.
        cursor.execute("SELECT tenant_id, occurred_at FROM audience_event_default")
        assert cursor.fetchall() == [(shop.acme.pk, at(2040, 1))]
    # Empty months that globex keeps stay (partitions_ensure would only make them again), and
    # every month after both cutoffs.
    assert {f"audience_event_p2025_{m}" for m in (11, 12)} <= left
    assert {f"audience_event_p2026_{m:02}" for m in (3, 4, 6, 7, 9, 10, 11, 12)} <= left


@postgresql_only
@pytest.mark.django_db
def test_it_drops_a_whole_month_once_the_last_team_that_kept_it_lets_it_go(world) -> None:
    shop = Shop(world)
    retention_apply(now=NOW, batch=2)
    shop.globex.event_retention_months = 6  # cutoff 2026-06-01: February is no one's now
    shop.globex.save(update_fields=["event_retention_months"])

    report = retention_apply(now=NOW, batch=2)

    # February, with globex's rows, and the empty months around it that globex kept.
    assert report.partitions_dropped == [
        "audience_event_p2025_11",
        "audience_event_p2025_12",
        *(f"audience_event_p2026_{m:02}" for m in (1, 2, 3, 4)),
    ]
    assert report.rows_deleted == {shop.globex.pk: 3}
    assert rollups(shop.globex)[(date(2026, 2, 10), "Product Viewed")] == (2, 1, Decimal(0))


@pytest.mark.django_db
def test_it_never_lowers_a_rollup_when_a_run_stops_halfway_and_starts_again(world) -> None:
    shop = Shop(world)
    cutoff = shop.cutoffs()["acme"]
    expected = expected_rollups(shop.acme, cutoff)
    rollups_build(tenant_id=shop.acme.pk, until=cutoff.date())
    assert rollups(shop.acme) == expected
    # A run that died after deleting some of February's views: the next finds fewer.
    half = Event.objects.filter(
        tenant=shop.acme, name="Product Viewed", occurred_at__month=2, occurred_at__year=2026
    ).order_by("pk")[:2]
    Event.objects.filter(pk__in=[e.pk for e in half]).delete()

    rollups_build(tenant_id=shop.acme.pk, until=cutoff.date())
    retention_apply(now=NOW, batch=2)

    assert rollups(shop.acme) == expected


@pytest.mark.django_db
def test_it_removes_a_late_event_for_a_day_it_already_removed(world) -> None:
    shop = Shop(world)
    retention_apply(now=NOW, batch=2)
    feb = rollups(shop.acme)[(date(2026, 2, 10), "Product Viewed")]
    shop.views(shop.acme, [shop.ann], at(2026, 2))  # a client that sends history late
    partitions_ensure(now=NOW)

    report = retention_apply(now=NOW, batch=2)

    assert report.rows_deleted == {shop.acme.pk: 1}
    assert min(when for _, when in stored(shop.acme)) >= shop.cutoffs()["acme"]
    # The rollup of that day does not go down for it.
    assert rollups(shop.acme)[(date(2026, 2, 10), "Product Viewed")] == feb


@pytest.mark.django_db
def test_it_leaves_other_teams_alone_when_a_team_has_nothing_old(world) -> None:
    shop = Shop(world)
    shop.acme.event_retention_months = 120
    shop.acme.save(update_fields=["event_retention_months"])
    shop.globex.event_retention_months = 120
    shop.globex.save(update_fields=["event_retention_months"])
    before = (stored(shop.acme), stored(shop.globex))

    report = retention_apply(now=NOW, batch=2)

    # 2010 is older than ten years: only those go.
    assert set(report.rows_deleted) == {shop.acme.pk, shop.globex.pk}
    assert stored(shop.acme) == {e for e in before[0] if e[1].year > 2010}
    assert stored(shop.globex) == {e for e in before[1] if e[1].year > 2010}
    assert report.partitions_dropped == []


# --- GDPR erasure stays complete ----------------------------------------------------------------


@pytest.mark.django_db
def test_erasing_a_contact_after_retention_leaves_no_event_key_or_order_of_theirs(world) -> None:
    shop = Shop(world)
    theirs = {m for m, _ in stored(shop.acme)} & set(
        Event.objects.filter(contact=shop.ann).values_list("message_id", flat=True)
    )
    assert Order.objects.filter(contact=shop.ann).count() == 4
    retention_apply(now=NOW, batch=2)
    assert Order.objects.filter(contact=shop.ann).count() == 4  # retention kept them

    contact_erase(tenant=shop.acme, contact=shop.ann)

    assert not Event.objects.filter(contact_id=shop.ann.pk).exists()
    assert not EventKey.objects.filter(tenant=shop.acme, message_id__in=theirs).exists()
    assert not Order.objects.filter(contact_id=shop.ann.pk).exists()
    assert not Order.objects.filter(tenant=shop.acme, message_id__in=theirs).exists()
    # Ben's stay, and the rollups hold no one's identity, only counts.
    assert Event.objects.filter(contact=shop.ben).exists()
    assert EventRollup.objects.filter(tenant=shop.acme).exists()


# --- The settings page's numbers ----------------------------------------------------------------


@pytest.mark.django_db
def test_it_previews_what_a_setting_would_remove(world) -> None:
    shop = Shop(world)
    preview = retention_preview(shop.acme, 3, now=NOW)
    assert preview.cutoff == datetime(2026, 9, 1, tzinfo=UTC)
    # 2010: 4, 2025-06: 4, 2026-02: 4, 2026-05: 1, 31 August: 1.
    assert (preview.events, preview.events_exact) == (14, True)
    assert preview.orders_kept == 3
    assert preview.oldest == at(2010, 1)
    assert preview.months_removed == (2026 - 2010) * 12 + 8
    # Nothing is removed by the preview.
    assert len(stored(shop.acme)) == 20
    assert retention_preview(shop.acme, 120, now=NOW).events == 4  # only 2010's


# --- Two runs at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_end_as_one_would(world) -> None:
    shop = Shop(world)
    cutoffs = shop.cutoffs()
    expected = {t.slug: expected_rollups(t, cutoffs[t.slug]) for t in (shop.acme, shop.globex)}
    before = {t.slug: stored(t) for t in (shop.acme, shop.globex)}
    kept = {slug: {e for e in events if e[1] >= cutoffs[slug]} for slug, events in before.items()}
    reports, errors = [], []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            reports.append(retention_apply(now=NOW, batch=1))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    for tenant in (shop.acme, shop.globex):
        assert stored(tenant) == kept[tenant.slug]
        assert keys(tenant) == kept[tenant.slug]
        assert rollups(tenant) == expected[tenant.slug]
    # Between them they removed each event once.
    assert sum(r.events_deleted for r in reports) == sum(
        len(before[slug]) - len(kept[slug]) for slug in before
    )
    if connection.vendor == "postgresql":
        dropped = sorted(n for r in reports for n in r.partitions_dropped)
        assert dropped == [
            *(f"audience_event_p2025_{m:02}" for m in range(6, 11)),
            "audience_event_p2026_05",
            "audience_event_p2026_08",
        ]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_month_whose_lock_is_busy_waits_whole_for_the_next_run(world, monkeypatch) -> None:
    """A long read of the events table holds the lock a drop needs: rather than queue
    ingestion behind it, retention leaves those months (rows and keys) for the next run and
    does the rest."""
    import psycopg

    monkeypatch.setattr(retention, "LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr(retention, "DROP_RETRY_SECONDS", 0)
    shop = Shop(world)
    june = {e for e in stored(shop.acme) if e[1].year == 2025}
    db = connection.settings_dict
    reader = psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=db["NAME"],
    )
    try:
        reader.execute("LOCK TABLE audience_event IN ACCESS SHARE MODE")  # a read in progress

        report = retention_apply(now=NOW, batch=2)

        assert report.partitions_dropped == []
        assert "audience_event_p2025_06" in report.partitions_busy
        assert june <= stored(shop.acme)
        assert june <= keys(shop.acme)  # the keys stay with their events
        # The rest went: acme's February rows (batches) and 2010's (the default partition).
        assert not {e for e in stored(shop.acme) if e[1].year in (2010, 2026) and e[1].month < 3}
    finally:
        reader.close()

    again = retention_apply(now=NOW, batch=2)

    assert "audience_event_p2025_06" in again.partitions_dropped
    assert again.partitions_busy == []
    assert not june & stored(shop.acme) and not june & keys(shop.acme)


@postgresql_only
@pytest.mark.django_db
def test_a_count_too_slow_for_the_settings_page_gives_the_planners_estimate(world) -> None:
    from django.db.models.expressions import RawSQL

    timeout_ms = retention.PREVIEW_COUNT_TIMEOUT_MS
    Shop(world)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        (before,) = cursor.fetchone()
    slow = Event.objects.filter(tenant=world.acme).filter(
        pk__in=RawSQL(
            "SELECT id FROM audience_event WHERE pg_sleep(%s) IS NOT NULL", [timeout_ms / 1000]
        )
    )

    count, exact = retention._count_quickly(slow)

    assert exact is False and count >= 0
    with connection.cursor() as cursor:  # the connection is fine and its timeout as it was
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == (before,)
    assert retention._count_quickly(Event.objects.filter(tenant=world.acme)) == (20, True)


@postgresql_only
@pytest.mark.django_db
def test_a_team_made_during_a_run_keeps_the_history_it_imports(world, monkeypatch) -> None:
    # globex appears only after the run read the teams' settings (as a team signing up and
    # importing its history meanwhile would): the months holding its rows are not dropped
    # with them, though every team the run knew of let them go.
    shop = Shop(world)
    read = retention._cutoffs
    monkeypatch.setattr(
        retention,
        "_cutoffs",
        lambda now: {t: c for t, c in read(now).items() if t != shop.globex.pk},
    )

    retention_apply(now=NOW, batch=2)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audience_event_p2026_02 WHERE tenant_id = %s", [shop.globex.pk]
        )
        assert cursor.fetchone()[0] == 3
