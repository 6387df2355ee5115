"""Dispatch: starting an occurrence (freezing its audience), releasing recipients into the
outbox as they come due, choosing the winner of an A/B test, finishing.

Freeze. At an occurrence's start its audience — members of the included segments, less those
of the excluded ones, reachable on the channel (messaging.reachability: address or push
subscription, suppression, consent) — becomes Recipient rows, with `INSERT … SELECT` in chunks
of contact ids (no row passes through Python). Each contact's lot is arithmetic on its id and a
seed of the campaign, the same on PostgreSQL and SQLite and the same for every occurrence of a
recurring campaign (one hold-out group over time): hold-out, test group or waiting for the
winner, variant by weight. Three different multipliers and primes keep the three draws apart.
`due_at`: the start, or the recipient's local time, or their best hour (send-time
optimisation), spaced by the throttle (the n-th recipient n/throttle minutes later). Those
unreachable now are not frozen (the audience estimate counts them); consent and the other
policies are judged again by the sender when each message goes.

Release. On PostgreSQL the freeze's own statement also decides the messages of everyone due
at the start (messaging's `deliveries_insert_sql` in the same `WITH`): they are written once,
released, with their delivery — a send-now campaign needs no release at all. Recipients due
later become Delivery rows (messaging's `deliveries_insert`; either way the key is
`campaign:<occurrence>:<contact>`) as they come due, in chunks claimed with
`FOR UPDATE SKIP LOCKED`, marked released in the same transaction. Each chunk holds the campaign
row `FOR SHARE`, so pausing (an UPDATE of that row) waits for chunks in flight and no chunk
starts after it. Pausing also takes back the campaign's outbox rows no sender has claimed yet
(their recipients wait again), so it stops the sending within seconds even when everyone was
released at once; only messages a sender already holds still go. Resuming carries on with
exactly the unreleased ones. Cancelling skips the campaign's queued messages.

Finish. An occurrence is sent once everyone (but the hold-out) is released and the campaign's
messages have left the outbox; until then the campaign is sending and can be paused.
"""

from __future__ import annotations

import contextlib
import logging
import time as clock
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audience.models import Contact
from campaigns import schedules
from campaigns.models import Campaign, CampaignSegment, Occurrence, Recipient, Variant
from messaging.selectors import reachable_filter

log = logging.getLogger(__name__)

FREEZE_CHUNK = 200_000  # contacts per INSERT … SELECT
RELEASE_CHUNK = 20_000  # recipients per release transaction (fewer commits, cheap arrays)
ONCE = "once"  # the key of a one-off campaign's occurrence
OPEN = (Occurrence.State.SENDING, Occurrence.State.TESTING)


def _hash(column: str, multiplier: int, modulus: int, seed: int) -> str:
    """SQL: a draw in [0, %s) from the contact's id. The high part of (id * m + seed) mod p
    (a Weyl sequence): neighbouring ids land far apart, and draws with different m and p are
    independent. (%% is SQL's modulo here: the statement has parameters.)"""
    return f"((({column} * {multiplier} + {seed}) %% {modulus}) * %s / {modulus})"


def _adapt(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def _plus_seconds(base_sql: str, seconds_sql: str) -> str:
    """SQL: the timestamp `base_sql` plus `seconds_sql` seconds, on either database."""
    if connection.vendor == "postgresql":
        return f"({base_sql} + make_interval(secs => {seconds_sql}))"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', julianday({base_sql}) + ({seconds_sql}) / 86400.0)"


def _commit_async() -> None:
    """This transaction's commit need not wait for its WAL flush (PostgreSQL). Safe here: a
    crash loses the whole freeze or release at once (redone by the next tick), and nothing
    it wrote can go out before it is durable — a sender's claim commits synchronously, which
    flushes the WAL up to it, this transaction's included. Halves a big freeze's time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def seed_of(campaign: Campaign) -> int:
    return (campaign.pk * 7919) % 10_007


def audience_queryset(*, campaign: Campaign) -> Any:
    """The campaign's audience now: members of its segments (campaigns.selectors), reachable
    on its channel (messaging.reachability)."""
    from campaigns.selectors import audience_contacts

    links = list(
        CampaignSegment.objects.filter(campaign=campaign).values_list("segment_id", "exclude")
    )
    contacts = audience_contacts(
        tenant=campaign.tenant,
        segments=[s for s, exclude in links if not exclude],
        exclude_segments=[s for s, exclude in links if exclude],
    )
    return contacts.filter(
        reachable_filter(
            tenant=campaign.tenant, channel=campaign.channel, category=campaign.category
        )
    )


def _chunk_bounds(tenant_id: int) -> list[tuple[int, int]]:
    """Ranges of contact ids (lo, hi] of about FREEZE_CHUNK contacts of the tenant each."""
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {table}"
            f" WHERE tenant_id = %s) AS c WHERE n %% {FREEZE_CHUNK} = 0 ORDER BY id",
            [tenant_id],
        )
        marks = [row[0] for row in cursor.fetchall()]
    bounds, lo = [], 0
    for hi in marks:
        bounds.append((lo, hi))
        lo = hi
    bounds.append((lo, 2**62))
    return bounds


def _decider(campaign: Campaign, variants: list[Variant]) -> Any:
    """Builds the outbox's INSERT for a freeze's rows due now (messaging owns its rows)."""
    from messaging.services import deliveries_insert_sql

    templates = {
        v.pk: v.template
        for v in Variant.objects.filter(pk__in=[v.pk for v in variants]).select_related("template")
    }

    def decide(rows_sql: str, rows_params: list[Any]) -> tuple[str, list[Any]]:
        return deliveries_insert_sql(
            tenant=campaign.tenant,
            templates=templates,
            source=f"campaign:{campaign.public_id}",
            rows_sql=rows_sql,
            rows_params=rows_params,
            category=campaign.category,
        )

    return decide


def _freeze(
    *, campaign: Campaign, occurrence: Occurrence, at: datetime, decide_now: bool = False
) -> None:
    """Insert the occurrence's recipients (see the module's docstring); `decide_now`
    (PostgreSQL): those due at once get their outbox rows in the same statement."""
    variants = list(Variant.objects.filter(campaign=campaign).order_by("key"))
    testing = len(variants) >= 2 and campaign.test_percent < 100
    seed = seed_of(campaign)
    total_weight = sum(v.weight for v in variants) or 1
    hold = _hash("s.id", 2654435761, 1000003, seed)
    test = _hash("s.id", 2246822519, 999983, seed)
    pick = _hash("s.id", 3266489917, 999979, seed)
    params: list[Any] = []

    # Inner: each contact's draws. Middle: its group's running number (for the throttle).
    inner_sql = (
        f"SELECT s.id, s.timezone, ({hold} < %s) AS holdout, "
        + (f"(NOT ({hold} < %s) AND {test} >= %s)" if testing else "(1 = 0)")
        + f" AS waiting, {pick} AS pick FROM ({{audience}}) AS s"
    )
    inner_params: list[Any] = [100, campaign.holdout_percent]
    if testing:
        inner_params += [100, campaign.holdout_percent, 100, campaign.test_percent]
    inner_params += [total_weight]

    # The variant: by weight, for those neither held out nor waiting.
    cases, upto = [], 0
    for variant in variants:
        upto += variant.weight
        cases.append(f"WHEN a.pick < {upto} THEN {variant.pk}")
    variant_sql = (
        f"CASE WHEN a.holdout OR a.waiting THEN NULL {' '.join(cases)} END" if variants else "NULL"
    )

    # The base due time: the start, or the recipient's local moment; the winner's time for
    # those waiting for it.
    if campaign.schedule == Campaign.Schedule.LOCAL and campaign.local_date and campaign.local_time:
        zones = list(
            Contact.objects.filter(tenant=campaign.tenant)
            .order_by()
            .values_list("timezone", flat=True)
            .distinct()
        )
        moments = schedules.local_moments(
            campaign.local_date, campaign.local_time, zones, campaign.tenant.timezone
        )
        whens = []
        for name, moment in moments.items():
            if name:
                whens.append("WHEN %s THEN %s")
                params_moment = max(moment, at)
                params.extend([name, _adapt(params_moment)])
        base_sql = f"CASE a.timezone {' '.join(whens)} ELSE %s END" if whens else "%s"
        params.append(_adapt(max(moments[""], at)))
    else:
        base_sql = "%s"
        params.append(_adapt(at))
    base_params, params = params, []
    if testing and occurrence.winner_due_at:
        winner = _adapt(occurrence.winner_due_at)
        due_base = f"CASE WHEN a.waiting THEN %s ELSE {base_sql} END"
        due_params = [winner, *base_params]
    else:
        due_base, due_params = base_sql, base_params

    throttle = campaign.throttle_per_minute
    table = Recipient._meta.db_table
    offsets = {"test": 0, "waiting": 0}
    decide = _decider(campaign, variants) if decide_now else None
    for lo, hi in _chunk_bounds(campaign.tenant_id):
        audience = (
            audience_queryset(campaign=campaign)
            .filter(pk__gt=lo, pk__lte=hi)
            .values("id", "timezone")
        )
        audience_sql, audience_params = audience.query.sql_with_params()
        # values("id") names the column "id" (the subquery reads s.id).
        inner = inner_sql.replace("{audience}", audience_sql)
        if throttle:
            number = (
                "(ROW_NUMBER() OVER (PARTITION BY a.holdout, a.waiting ORDER BY a.id) - 1"
                " + CASE WHEN a.waiting THEN %s ELSE %s END)"
            )
            due_sql = _plus_seconds(due_base, f"{number} * {60.0 / throttle}")
            number_params = [offsets["waiting"], offsets["test"]]
        else:
            due_sql, number_params = due_base, []
        # Each recipient: contact, variant, hold-out, due time. Placeholders in order: the
        # due time's (base…, number…), then the draws', then the audience's.
        rows_sql = (
            f"SELECT a.id, {variant_sql} AS variant_id, a.holdout, {due_sql} AS due"
            f" FROM ({inner}) AS a"
        )
        rows_params = [*due_params, *number_params, *inner_params, *audience_params]
        columns = "tenant_id, occurrence_id, contact_id, variant_id, holdout, due_at, released"
        if decide is None:
            sql = (
                f"INSERT INTO {table} ({columns}) SELECT %s, %s, b.id, b.variant_id, b.holdout,"
                f" b.due, %s FROM ({rows_sql}) AS b"
            )
            params = [campaign.tenant_id, occurrence.pk, False, *rows_params]
        else:
            # Those due now go to the outbox in the same statement: written once, released,
            # with their delivery (instead of an UPDATE of each recipient on release).
            decide_sql, decide_params = decide(
                "SELECT b.id AS contact_id, %s || b.id::text AS key, b.due AS not_before,"
                " b.variant_id AS pick FROM b WHERE b.variant_id IS NOT NULL AND b.due <= %s",
                [f"campaign:{occurrence.public_id}:", at],
            )
            sql = (
                f"WITH b AS MATERIALIZED ({rows_sql}), d AS ({decide_sql})"
                f" INSERT INTO {table} ({columns}, delivery_id) SELECT %s, %s, b.id,"
                " b.variant_id, b.holdout, b.due, d.id IS NOT NULL, d.id"
                " FROM b LEFT JOIN d ON d.contact_id = b.id"
            )
            params = [*rows_params, *decide_params, campaign.tenant_id, occurrence.pk]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        if throttle:
            counts = _group_counts(occurrence, lo, hi)
            offsets["test"] += counts["test"]
            offsets["waiting"] += counts["waiting"]


def _group_counts(occurrence: Occurrence, lo: int, hi: int) -> dict[str, int]:
    rows = Recipient.objects.filter(
        tenant_id=occurrence.tenant_id,
        occurrence=occurrence,
        contact_id__gt=lo,
        contact_id__lte=hi,
        holdout=False,
    )
    waiting = rows.filter(variant__isnull=True).count()
    return {"waiting": waiting, "test": rows.count() - waiting}


def _sto_apply(*, campaign: Campaign, occurrence: Occurrence) -> None:
    """Move each non-held-out recipient to their best hour (campaigns.sto), spaced by the
    throttle within each hour."""
    from campaigns import sto

    fallback = sto.team_best_hour(tenant=campaign.tenant)
    per_hour: dict[datetime, int] = defaultdict(int)
    step = (
        timedelta(minutes=1 / campaign.throttle_per_minute)
        if campaign.throttle_per_minute
        else None
    )
    last = 0
    while True:
        rows = list(
            Recipient.objects.filter(
                tenant_id=occurrence.tenant_id, occurrence=occurrence, holdout=False, pk__gt=last
            )
            .order_by("pk")
            .values_list("pk", "contact_id", "due_at", "variant_id")[:5000]
        )
        if not rows:
            return
        last = rows[-1][0]
        hours = sto.best_hours(tenant=campaign.tenant, contact_ids=[r[1] for r in rows])
        changes = []
        for pk, contact_id, _due_at, variant_id in rows:
            hour = hours.get(contact_id)
            if hour is None:
                hour = fallback
            if hour is None:
                continue
            start = (
                occurrence.winner_due_at
                if variant_id is None and occurrence.winner_due_at
                else occurrence.started_at
            )
            moment = schedules.sto_moment(start, int(hour), campaign.sto_window_hours)
            if step is not None:
                n = per_hour[moment]
                per_hour[moment] += 1
                moment = moment + step * n
            changes.append((pk, moment))
        _due_update(changes)


def _due_update(changes: Sequence[tuple[int, datetime]]) -> None:
    if not changes:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Recipient._meta.db_table} AS r SET due_at = v.due_at"
                " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, due_at) WHERE r.id = v.id",
                [[c[0] for c in changes], [c[1] for c in changes]],
            )
        return
    Recipient.objects.bulk_update(
        [Recipient(pk=pk, due_at=due_at) for pk, due_at in changes], ["due_at"], batch_size=1000
    )


def occurrence_start(
    *, campaign: Campaign, key: str, at: datetime | None = None
) -> Occurrence | None:
    """Start the campaign's occurrence `key` now: freeze its audience and set the campaign
    sending. None when the campaign is not scheduled (paused, cancelled, already sending) or
    that occurrence exists, or another process holds the campaign (it is starting it: a big
    freeze takes a while, and a second tick must not wait for it): safe to call twice, at
    once, from two beat processes."""
    at = at or timezone.now()
    with transaction.atomic():
        locked = (
            Campaign.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(pk=campaign.pk)
            .first()
        )
        if locked is None or locked.state != Campaign.State.SCHEDULED:
            return None
        campaign = locked
        if Occurrence.objects.filter(campaign=campaign, key=key).exists():
            return None
        testing = (
            Variant.objects.filter(campaign=campaign).count() >= 2 and campaign.test_percent < 100
        )
        try:
            with transaction.atomic():
                occurrence = Occurrence.objects.create(
                    tenant=campaign.tenant,
                    campaign=campaign,
                    key=key,
                    started_at=at,
                    state=Occurrence.State.TESTING if testing else Occurrence.State.SENDING,
                    winner_due_at=at + timedelta(hours=campaign.winner_after_hours)
                    if testing
                    else None,
                )
        except IntegrityError:  # the last guard; the campaign's row lock makes it rare
            return None
        _commit_async()
        # Send-time optimisation moves due times after the freeze: nothing is due before it.
        decide_now = connection.vendor == "postgresql" and not campaign.send_time_optimized
        _freeze(campaign=campaign, occurrence=occurrence, at=at, decide_now=decide_now)
        if campaign.send_time_optimized:
            _sto_apply(campaign=campaign, occurrence=occurrence)
        counts = Recipient.objects.filter(
            tenant_id=occurrence.tenant_id, occurrence=occurrence
        ).aggregate(
            total=Count("pk"),
            holdout=Count("pk", filter=Q(holdout=True)),
            released=Count("pk", filter=Q(released=True)),
        )
        occurrence.recipient_count = counts["total"]
        occurrence.holdout_count = counts["holdout"]
        if counts["released"]:
            from messaging.services import deliveries_wake

            deliveries_wake(channel=campaign.channel, count=counts["released"])
        occurrence.save(update_fields=["recipient_count", "holdout_count"])
        campaign.state = Campaign.State.SENDING
        if campaign.schedule == Campaign.Schedule.RECURRING:
            campaign.send_at = next_slot(campaign, after=at)
        campaign.updated_at = at
        campaign.save(update_fields=["state", "send_at", "updated_at"])
        pk = occurrence.pk
        transaction.on_commit(lambda: _release_later(pk), robust=True)
    log.info(
        "campaign %s occurrence %s: %d recipients frozen",
        campaign.pk,
        key,
        occurrence.recipient_count,
    )
    return occurrence


def _release_later(occurrence_id: int) -> None:
    from campaigns import tasks

    try:
        tasks.occurrence_release.apply_async((occurrence_id,), retry=False)
    except Exception:  # the broker is down: the beat's tick releases within seconds
        log.warning("could not queue the release of occurrence %s", occurrence_id, exc_info=True)


def next_slot(campaign: Campaign, *, after: datetime) -> datetime | None:
    return schedules.slot_next(
        vars(campaign), schedules.zone(campaign.tenant.timezone), after, campaign.recurring_until
    )


def campaign_start_due(*, campaign: Campaign, at: datetime | None = None) -> Occurrence | None:
    """Start the campaign if its time has come: a one-off's single occurrence, or a recurring
    campaign's latest slot (not before `send_at`, the first slot not yet run). Slots missed
    (beat was down, or the previous occurrence was still sending at their time) give one
    catch-up, the latest of them; the others are skipped. A recurring campaign with no slot
    left to run (the latest is past `recurring_until`) is sent; one whose `send_at` is no slot
    (the team's zone changed) moves on to its next slot."""
    at = at or timezone.now()
    if (
        campaign.state != Campaign.State.SCHEDULED
        or campaign.send_at is None
        or campaign.send_at > at
    ):
        return None
    if campaign.schedule != Campaign.Schedule.RECURRING:
        return occurrence_start(campaign=campaign, key=ONCE, at=at)
    slot = schedules.slot_latest(vars(campaign), schedules.zone(campaign.tenant.timezone), at)
    if (
        slot is not None
        and slot >= campaign.send_at - timedelta(seconds=1)
        and not (campaign.recurring_until and slot > campaign.recurring_until)
    ):
        return occurrence_start(campaign=campaign, key=schedules.slot_key(slot), at=at)
    _recurring_move_on(campaign=campaign, at=at)
    return None


def _recurring_move_on(*, campaign: Campaign, at: datetime) -> None:
    """A due recurring campaign with no slot to run now: on to its next slot, or sent when
    none is left before `recurring_until` (else it would stay due, and at the head of the
    tick's window, for ever)."""
    with transaction.atomic():
        locked = (
            Campaign.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(pk=campaign.pk)
            .first()
        )
        if (
            locked is None
            or locked.state != Campaign.State.SCHEDULED
            or locked.send_at is None
            or locked.send_at > at
        ):
            return
        upcoming = next_slot(locked, after=at)
        if upcoming is not None:
            locked.send_at, locked.updated_at = upcoming, at
            locked.save(update_fields=["send_at", "updated_at"])
            return
        from campaigns.services import periodic_task_remove

        periodic_task_remove(campaign=locked)
        locked.state, locked.updated_at = Campaign.State.SENT, at
        locked.save(update_fields=["state", "periodic_task", "updated_at"])
    campaign.state, campaign.send_at = locked.state, locked.send_at


# --- release ---------------------------------------------------------------------------------


def _campaign_sending(campaign_id: int) -> bool:
    """Whether the campaign is sending, holding its row against a pause until commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT state FROM {Campaign._meta.db_table} WHERE id = %s FOR SHARE",
                [campaign_id],
            )
            row = cursor.fetchone()
        return bool(row) and row[0] == Campaign.State.SENDING
    return Campaign.objects.filter(pk=campaign_id, state=Campaign.State.SENDING).exists()


def recipients_release(
    *, occurrence: Occurrence, limit: int = RELEASE_CHUNK, at: datetime | None = None
) -> int:
    """Turn up to `limit` due recipients into outbox rows; returns how many. Nothing while the
    campaign is not sending. Safe in any number of workers at once."""
    at = at or timezone.now()
    with transaction.atomic():
        if not _campaign_sending(occurrence.campaign_id):
            return 0
        _commit_async()
        rows = list(
            Recipient.objects.filter(
                tenant_id=occurrence.tenant_id,
                occurrence_id=occurrence.pk,
                released=False,
                holdout=False,
                variant__isnull=False,
                due_at__lte=at,
            )
            .order_by("due_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", "contact_id", "variant_id", "due_at")[:limit]
        )
        if not rows:
            return 0
        from messaging.services import deliveries_insert

        campaign = Campaign.objects.select_related("tenant").get(pk=occurrence.campaign_id)
        # A contact erased while the freeze ran can leave a recipient behind (no database
        # constraint on it; the erasure's cascade could not see the uncommitted row): its
        # outbox row would fail its contact's foreign key at commit, every tick. Drop those.
        existing: set[int] = set()
        contact_ids = [r[1] for r in rows]
        for start in range(0, len(contact_ids), 5000):
            existing.update(
                Contact.objects.filter(
                    tenant_id=campaign.tenant_id, pk__in=contact_ids[start : start + 5000]
                ).values_list("pk", flat=True)
            )
        gone = [r[0] for r in rows if r[1] not in existing]
        if gone:
            Recipient.objects.filter(pk__in=gone).delete()
            rows = [r for r in rows if r[1] in existing]
        variants = {
            v.pk: v for v in Variant.objects.filter(campaign=campaign).select_related("template")
        }
        by_variant: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
        prefix = f"campaign:{occurrence.public_id}:"
        for _, contact_id, variant_id, due_at in rows:
            by_variant[variant_id].append((contact_id, f"{prefix}{contact_id}", due_at))
        delivery_ids: dict[str, int] = {}
        for variant_id, decided in by_variant.items():
            delivery_ids.update(
                deliveries_insert(
                    tenant=campaign.tenant,
                    template=variants[variant_id].template,
                    source=f"campaign:{campaign.public_id}",
                    rows=decided,
                    category=campaign.category,
                )
            )
        _mark_released(
            [(pk, delivery_ids.get(f"{prefix}{contact_id}")) for pk, contact_id, _, _ in rows]
        )
    return len(rows) + len(gone)


def _mark_released(rows: Sequence[tuple[int, int | None]]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Recipient._meta.db_table} AS r SET released = true,"
                " delivery_id = v.delivery_id"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, delivery_id) WHERE r.id = v.id",
                [[r[0] for r in rows], [r[1] for r in rows]],
            )
        return
    Recipient.objects.bulk_update(
        [Recipient(pk=pk, released=True, delivery_id=d) for pk, d in rows],
        ["released", "delivery"],
        batch_size=1000,
    )


def occurrence_release(*, occurrence: Occurrence, seconds: float = 20.0) -> tuple[int, bool]:
    """Release due recipients chunk after chunk for up to `seconds`, then finish the
    occurrence if nothing is left. Returns (released, more: a full chunk was left)."""
    started, total = clock.monotonic(), 0
    while True:
        done = recipients_release(occurrence=occurrence)
        total += done
        if done < RELEASE_CHUNK:
            occurrence_finish_if_done(occurrence=occurrence)
            return total, False
        if clock.monotonic() - started > seconds:
            return total, True


def _in_outbox(campaign: Campaign) -> bool:
    """Whether messages of the campaign still wait in the outbox or are being sent: until
    they are out it is still sending (and can be paused)."""
    from messaging.models import Delivery

    mine = Delivery.objects.filter(
        tenant_id=campaign.tenant_id,
        channel=campaign.channel,
        source=f"campaign:{campaign.public_id}",
    )
    # One status per query: each is served by its own partial index of the outbox.
    return (
        mine.filter(status=Delivery.Status.QUEUED).exists()
        or mine.filter(status=Delivery.Status.SENDING).exists()
    )


def occurrence_finish_if_done(*, occurrence: Occurrence, at: datetime | None = None) -> bool:
    """Mark the occurrence sent once every recipient it will send to is released (the
    hold-out never is) and their messages have left the outbox; a one-off campaign is then
    sent, a recurring one waits for its next slot (or is sent, past `recurring_until`)."""
    at = at or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .get(pk=occurrence.campaign_id)
        )
        occurrence = Occurrence.objects.select_for_update().get(pk=occurrence.pk)
        if occurrence.state != Occurrence.State.SENDING or campaign.state != Campaign.State.SENDING:
            return False
        left = Recipient.objects.filter(
            tenant_id=occurrence.tenant_id, occurrence=occurrence, released=False, holdout=False
        )
        if left.exists() or _in_outbox(campaign):
            return False
        occurrence.state, occurrence.finished_at = Occurrence.State.SENT, at
        occurrence.save(update_fields=["state", "finished_at"])
        campaign_after_occurrence(campaign=campaign, at=at, occurrence=occurrence)
    return True


def _slot_of(occurrence: Occurrence) -> datetime:
    """A recurring occurrence's slot, read off its key (`schedules.slot_key`)."""
    try:
        return datetime.strptime(occurrence.key, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return occurrence.started_at


def campaign_after_occurrence(
    *, campaign: Campaign, at: datetime, occurrence: Occurrence | None = None
) -> None:
    """A campaign whose occurrence ended (caller holds its row lock). A recurring one is due
    next at the first slot after the finished occurrence's slot (not after now): a slot that
    came while that occurrence was still sending is then past, and due at once — the tick
    starts it (campaign_start_due: one catch-up, the latest slot passed, however many
    passed). With no slot left before `recurring_until` it is sent."""
    if campaign.schedule == Campaign.Schedule.RECURRING:
        after = _slot_of(occurrence) if occurrence is not None else at
        upcoming = next_slot(campaign, after=after)
        if upcoming is not None:
            campaign.state, campaign.send_at = Campaign.State.SCHEDULED, upcoming
            campaign.updated_at = at
            campaign.save(update_fields=["state", "send_at", "updated_at"])
            if upcoming <= at:
                from campaigns.services import _start_later

                pk = campaign.pk
                transaction.on_commit(lambda: _start_later(pk), robust=True)
            return
        from campaigns.services import periodic_task_remove

        periodic_task_remove(campaign=campaign)
    campaign.state, campaign.updated_at = Campaign.State.SENT, at
    campaign.save(update_fields=["state", "periodic_task", "updated_at"])


# --- the winner ------------------------------------------------------------------------------


def occurrence_winner_decide(
    *, occurrence: Occurrence, at: datetime | None = None
) -> Variant | None:
    """Choose the test's winner (campaigns.results.winner_choose on the variants' results) and
    give it to everyone waiting for it; they are then released as they come due. None when
    the occurrence is not testing, its time has not come, or the campaign is not sending."""
    at = at or timezone.now()
    from campaigns.results import variant_metric_stats, winner_choose

    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=occurrence.campaign_id)
        occurrence = (
            Occurrence.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .get(pk=occurrence.pk)
        )
        if (
            occurrence.state != Occurrence.State.TESTING
            or campaign.state != Campaign.State.SENDING
            or (occurrence.winner_due_at and occurrence.winner_due_at > at)
        ):
            return None
        variants = {v.key: v for v in Variant.objects.filter(campaign=campaign)}
        stats = variant_metric_stats(occurrence=occurrence)
        key = winner_choose(stats, campaign.winner_metric) if stats else None
        winner = variants.get(str(key)) if key else None
        if winner is None:
            winner = variants[min(variants)]
        Recipient.objects.filter(
            tenant_id=occurrence.tenant_id,
            occurrence=occurrence,
            holdout=False,
            variant__isnull=True,
            released=False,
        ).update(variant=winner)
        occurrence.winner, occurrence.state = winner, Occurrence.State.SENDING
        occurrence.save(update_fields=["winner", "state"])
        pk = occurrence.pk
        transaction.on_commit(lambda: _release_later(pk), robust=True)
    return winner


# --- the clock -------------------------------------------------------------------------------


START_BATCH = 100  # campaigns started (or tried) per tick
START_WINDOW = 5000  # due campaigns looked at per tick (those that failed lately are skipped)
START_RETRY_SECONDS = 300


def _failed_key(campaign_id: int) -> str:
    return f"campaigns:start-failed:{campaign_id}"


def tick(*, at: datetime | None = None, seconds: float = 8.0) -> dict[str, int]:
    """The beat's clock (campaigns.tasks.campaigns_tick): start due campaigns, decide due
    winners, release due recipients of sending campaigns and finish what is done."""
    at = at or timezone.now()
    started = clock.monotonic()
    report = {"started": 0, "winners": 0, "released": 0}
    # Due campaigns, oldest first, up to START_BATCH a tick; one whose start failed is left
    # alone for START_RETRY_SECONDS, so failing ones at the head never starve the others.
    due = Campaign.objects.filter(state=Campaign.State.SCHEDULED, send_at__lte=at)
    ids = list(due.order_by("send_at", "pk").values_list("pk", flat=True)[:START_WINDOW])
    failed: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # the cache is down: try them all
        failed = cache.get_many([_failed_key(pk) for pk in ids]) if ids else {}
    ids = [pk for pk in ids if _failed_key(pk) not in failed][:START_BATCH]
    for campaign in (
        Campaign.objects.filter(pk__in=ids).select_related("tenant").order_by("send_at", "pk")
    ):
        try:
            if campaign_start_due(campaign=campaign, at=at):
                report["started"] += 1
        except Exception:
            log.exception("campaign %s did not start", campaign.pk)
            with contextlib.suppress(Exception):
                cache.set(_failed_key(campaign.pk), 1, START_RETRY_SECONDS)
    testing = Occurrence.objects.filter(
        state=Occurrence.State.TESTING,
        winner_due_at__lte=at,
        campaign__state=Campaign.State.SENDING,
    )
    # One campaign's failure is logged and retried next tick; it never stops the others.
    for occurrence in testing:
        try:
            if occurrence_winner_decide(occurrence=occurrence, at=at):
                report["winners"] += 1
        except Exception:
            log.exception("occurrence %s: the winner was not decided", occurrence.pk)
    sending = Occurrence.objects.filter(state__in=OPEN, campaign__state=Campaign.State.SENDING)
    for occurrence in sending.order_by("started_at"):
        left = max(seconds - (clock.monotonic() - started), 0.5)
        try:
            released, _ = occurrence_release(occurrence=occurrence, seconds=left)
        except Exception:
            log.exception("occurrence %s: releasing failed", occurrence.pk)
            continue
        report["released"] += released
    return report
