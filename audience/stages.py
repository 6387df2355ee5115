"""Lifecycle stages: each contact's place in the customer journey, computed from what it did by
its team's rules (StageRules; docs/lifecycle.md says them in plain words).

The rules, first that holds wins (the precedence):

1. retention  "inactive"        a buyer (an order in the ledger) with no activity — last seen,
                                last order — for `drifting_days`
2. advocacy   "promoter"        the latest answer to an NPS event (`nps_events`) within
                                `advocacy_days` has a numeric `score` ≥ `promoter_min_score`
              "advocate"        an advocacy event (`advocacy_events`: a review, a share, a
                                referral) within `advocacy_days`
3. onboarding "first_order"     the first order is under `onboarding_days` old
              "signed_up"       a `Signed Up` event under `onboarding_days` old
4. engagement "active_buyer"    ordered within `active_days`
5. retention  "no_recent_order" a buyer whose last order is older than `active_days`
6. acquisition "identified"     known by a user id or an email address
7. awareness  "anonymous"       everyone else

"Within N days" means younger than N times 24 hours at the moment of computing (UTC instants, so a
change of daylight-saving time moves nothing).

`stages_refresh` computes the stages of a batch of contacts with one statement (correlated
look-ups on the order ledger's and the events' (tenant, contact, time) indexes, the events
bounded by time so only recent monthly partitions are read), writes only the contacts whose
stage changed (guarded, so two runs at once change a contact once) and records one
`Lifecycle Stage Changed` event per change through `events_record`. Ingestion triggers it after
commit for the contacts it touched (audience/tasks.py); a daily run moves the contacts the clock
moves (an onboarding ends, a customer drifts, a review gets old).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils.timezone import now

from audience.models import Contact, Event, LifecycleStage, Order, StageRules
from tenants.models import Tenant

STAGE_CHANGED = "Lifecycle Stage Changed"
SOURCE = "lifecycle"
SIGNED_UP = "Signed Up"  # Segment's B2B SaaS spec name
BATCH = 2_000  # contacts per statement in a whole-team run

S = LifecycleStage

# (stage, reason), in precedence order: the reasons a `Lifecycle Stage Changed` event names.
REASONS: tuple[tuple[str, str, str], ...] = (
    (S.RETENTION, "inactive", "a buyer not seen for the drifting period"),
    (S.ADVOCACY, "promoter", "a promoter score lately"),
    (S.ADVOCACY, "advocate", "a review, share or referral lately"),
    (S.ONBOARDING, "first_order", "a first order lately"),
    (S.ONBOARDING, "signed_up", "signed up lately"),
    (S.ENGAGEMENT, "active_buyer", "ordered within the active period"),
    (S.RETENTION, "no_recent_order", "a buyer with no order in the active period"),
    (S.ACQUISITION, "identified", "known by user id or email"),
    (S.AWARENESS, "anonymous", "not known yet"),
)


def stage_rules(*, tenant: Tenant) -> StageRules:
    """The team's rules: its saved row, or the defaults (not saved)."""
    return StageRules.objects.filter(tenant=tenant).first() or StageRules.defaults(tenant)


class _Score(Func):
    """The `score` property of an event when it is a JSON number, else NULL (text, true/false
    and objects are no score, on either database)."""

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template=(
                "CASE WHEN jsonb_typeof(%(expressions)s -> 'score') = 'number'"
                " THEN (%(expressions)s ->> 'score')::float8 END"
            ),
            **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template=(
                "CASE WHEN json_type(%(expressions)s, '$.score') IN ('integer', 'real')"
                " THEN json_extract(%(expressions)s, '$.score') END"
            ),
            **extra,
        )


@dataclass(frozen=True)
class Change:
    contact_id: int
    old: str
    new: str
    reason: str


def _computed(tenant: Tenant, rules: StageRules, at: datetime) -> Any:
    """The tenant's contacts annotated with `new_stage` and `reason` (a queryset to filter)."""
    day = timedelta(days=1)
    onboarding_cut = at - rules.onboarding_days * day
    active_cut = at - rules.active_days * day
    drifting_cut = at - rules.drifting_days * day
    advocacy_cut = at - rules.advocacy_days * day
    orders = Order.objects.filter(tenant=tenant, contact_id=OuterRef("pk"))
    events = Event.objects.filter(tenant=tenant, contact_id=OuterRef("pk"))
    latest_answer = (
        events.filter(name__in=list(rules.nps_events), occurred_at__gt=advocacy_cut)
        .order_by("-occurred_at", "-id")
        .annotate(score=_Score(F("properties")))
        .values("score")[:1]
    )
    when = DateTimeField()
    qs = Contact.objects.filter(tenant=tenant).annotate(
        first_order=Subquery(orders.order_by("occurred_at").values("occurred_at")[:1], when),
        last_order=Subquery(orders.order_by("-occurred_at").values("occurred_at")[:1], when),
        signed_up=Exists(events.filter(name=SIGNED_UP, occurred_at__gt=onboarding_cut)),
        promoter_score=Subquery(latest_answer, FloatField()),
        advocate=Exists(
            events.filter(name__in=list(rules.advocacy_events), occurred_at__gt=advocacy_cut)
        ),
    )
    qs = qs.annotate(
        # The latest of last seen and last order (either may be missing: an imported buyer).
        last_activity=Greatest(
            Coalesce("last_seen_at", "last_order"), Coalesce("last_order", "last_seen_at")
        )
    )
    buyer = Q(last_order__isnull=False)
    conditions = {
        "inactive": buyer & Q(last_activity__lte=drifting_cut),
        "promoter": Q(promoter_score__gte=rules.promoter_min_score),
        "advocate": Q(advocate=True),
        "first_order": Q(first_order__gt=onboarding_cut),
        "signed_up": Q(signed_up=True),
        "active_buyer": Q(last_order__gt=active_cut),
        "no_recent_order": buyer,
        "identified": ~Q(user_id="") | ~Q(email=""),
    }
    text = CharField()
    reason = Case(
        *(When(conditions[r], then=Value(r)) for _, r, _ in REASONS[:-1]),
        default=Value("anonymous"),
        output_field=text,
    )
    return qs.annotate(reason=reason)


_STAGE_OF = {reason: stage for stage, reason, _ in REASONS}


def stages_compute(
    *, tenant: Tenant, contact_ids: Iterable[int] | None = None, at: datetime | None = None
) -> dict[int, tuple[str, str]]:
    """{contact id: (stage, reason)} by the team's rules at `at` (now), for `contact_ids` or
    every contact of the team. A read: nothing is written."""
    qs = _computed(tenant, stage_rules(tenant=tenant), at or now())
    if contact_ids is not None:
        qs = qs.filter(pk__in=list(contact_ids))
    return {pk: (_STAGE_OF[reason], reason) for pk, reason in qs.values_list("pk", "reason")}


def stages_refresh(
    *,
    tenant: Tenant,
    contact_ids: Sequence[int] | None = None,
    at: datetime | None = None,
    rules: StageRules | None = None,
) -> list[Change]:
    """Bring the stages of `contact_ids` (None: the whole team, in batches of BATCH contacts,
    one transaction each) up to date by the team's rules, and record a `Lifecycle Stage
    Changed` event for each change. Safe to run twice, at once too: a contact whose stage is
    current changes nothing and records nothing. Returns the changes made."""
    at = at or now()
    rules = rules or stage_rules(tenant=tenant)
    if contact_ids is not None:
        changes: list[Change] = []
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH):
            changes += _refresh_batch(tenant, rules, at, Q(pk__in=ids[start : start + BATCH]))
        return changes
    changes, after = [], 0
    while True:
        # Id ranges from the (tenant, …) indexes' point of view: each batch one range.
        bounds = list(
            Contact.objects.filter(tenant=tenant, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[BATCH - 1 : BATCH]
        )
        upper = bounds[0] if bounds else None
        window = Q(pk__gt=after) if upper is None else Q(pk__gt=after, pk__lte=upper)
        changes += _refresh_batch(tenant, rules, at, window)
        if upper is None:
            return changes
        after = upper


def _refresh_batch(tenant: Tenant, rules: StageRules, at: datetime, which: Q) -> list[Change]:
    with transaction.atomic():
        rows = (
            _computed(tenant, rules, at)
            .filter(which)
            .values_list("pk", "lifecycle_stage", "reason")
        )
        wanted = {
            pk: Change(pk, old, _STAGE_OF[reason], reason)
            for pk, old, reason in rows
            if _STAGE_OF[reason] != old
        }
        if not wanted:
            return []
        # Lock the contacts to change, in id order (as ingestion locks them), and keep those
        # still at the stage computed from: a concurrent run changed the others already.
        current = (
            Contact.objects.select_for_update()
            .filter(tenant=tenant, pk__in=list(wanted))
            .order_by("pk")
            .values_list("pk", "lifecycle_stage")
        )
        changes = [wanted[pk] for pk, stage in current if stage == wanted[pk].old]
        by_stage: dict[str, list[int]] = defaultdict(list)
        for change in changes:
            by_stage[change.new].append(change.contact_id)
        for stage, ids in by_stage.items():
            Contact.objects.filter(tenant=tenant, pk__in=ids).update(lifecycle_stage=stage)
        _record(tenant, changes, at)
        return changes


def _record(tenant: Tenant, changes: Sequence[Change], at: datetime) -> None:
    from audience.services import Fact, events_record  # services import this module's callers

    stamp = at.isoformat()
    events_record(
        tenant=tenant,
        facts=[
            Fact(
                contact_id=c.contact_id,
                name=STAGE_CHANGED,
                # The moment names the change: the same move again later is a new event.
                key=f"{c.old}>{c.new}@{stamp}",
                source=SOURCE,
                properties={"from": c.old, "to": c.new, "reason": c.reason},
                occurred_at=at,
            )
            for c in changes
        ],
        fresh=True,
    )


def stage_changes_wanted(events: Iterable[Any]) -> list[int]:
    """The contacts of recorded events (audience.signals.RecordedEvent) whose stage may have
    moved: all but those whose only events are stage changes themselves (no loop)."""
    return sorted({e.contact_id for e in events if e.name != STAGE_CHANGED})


def stage_rules_save(*, tenant: Tenant, rules: StageRules) -> StageRules:
    """Save the team's rules (validated: `StageRules.clean`) and, once committed, re-evaluate
    every contact of the team by them (a task: a large team takes a while)."""
    from audience.tasks import lifecycle_stages_refresh_team

    rules.tenant = tenant
    rules.updated_at = now()
    rules.full_clean()
    with transaction.atomic():
        if rules.pk is None:
            rules.pk = StageRules.objects.filter(tenant=tenant).values_list("pk", flat=True).first()
        rules.save()
        transaction.on_commit(lambda: lifecycle_stages_refresh_team.delay(tenant.pk), robust=True)
    return rules


# --- kept current on ingest: audience's own receivers (connected in AudienceConfig.ready) ---
CHUNK = 500  # contacts per task: one ingested chunk is one task, a big import several


def _queue(tenant: Tenant, contact_ids: Sequence[int]) -> None:
    from audience.tasks import lifecycle_stages_refresh_contacts

    for start in range(0, len(contact_ids), CHUNK):
        lifecycle_stages_refresh_contacts.delay(tenant.pk, list(contact_ids[start : start + CHUNK]))


def on_events_recorded(sender: object, tenant: Tenant, events: Sequence[Any], **_: Any) -> None:
    _queue(tenant, stage_changes_wanted(events))


def on_contacts_changed(
    sender: object, tenant: Tenant, contact_ids: Sequence[int], **_: Any
) -> None:
    _queue(tenant, sorted(set(contact_ids)))
