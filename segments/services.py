"""Writes for segments: saving rule trees (validated), and keeping membership materialised.

Segment membership changes are set-based: one INSERT … SELECT for the contacts that entered and one
DELETE for those that left, each built around the compiled rule query, then one `Segment
Entered` / `Segment Exited` event per change, all in one transaction. A refresh that runs twice
changes nothing the second time, so every real entry and exit is recorded exactly once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from audience.models import Contact
from audience.services import Fact, events_record
from core.db import raw_cursor
from segments import rules as rule_tree
from segments.compiler import segment_contacts
from segments.models import Segment, SegmentMembership
from segments.registry import SEGMENT_USERS
from segments.signals import segment_membership_changed
from tenants.models import Tenant

ENTERED = "Segment Entered"
EXITED = "Segment Exited"
SOURCE = "segments"  # the source of the events above


class SegmentError(ValueError):
    """A segment that cannot be saved; `field` names the form field ("name", "rules")."""

    def __init__(self, message: str, *, field: str = "rules") -> None:
        super().__init__(message)
        self.message, self.field = message, field


class SegmentInUse(SegmentError):
    """A segment that a campaign or a journey uses: deleting it is refused (the API's 409)."""


@dataclass
class SegmentMembershipChange:
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)


def _check_rules(*, tenant: Tenant, rules: object, segment: Segment | None) -> dict[str, Any]:
    try:
        tree = rule_tree.validate(rules)
    except rule_tree.RuleError as exc:
        raise SegmentError(str(exc)) from None
    # Referenced segments must be this tenant's, and must not lead back to this one.
    known = {
        str(public_id): other_rules
        for public_id, other_rules in Segment.objects.filter(tenant=tenant).values_list(
            "public_id", "rules"
        )
    }
    for ref in rule_tree.references(tree):
        if ref not in known:
            raise SegmentError(f"A condition refers to a segment that does not exist ({ref}).")
    if segment is not None:
        me = str(segment.public_id)
        stack, seen = list(rule_tree.references(tree)), set()
        while stack:
            ref = stack.pop()
            if ref == me:
                raise SegmentError("A segment cannot include itself, directly or through others.")
            if ref not in seen and ref in known:
                seen.add(ref)
                stack.extend(rule_tree.references(known[ref]))
    return tree


def segment_rules_check(
    *, tenant: Tenant, rules: object, segment: Segment | None = None
) -> dict[str, Any]:
    """The normalised tree, or SegmentError: what saving would check (the tree's shape, and that
    referenced segments are the tenant's and do not lead back to `segment`), for callers that
    validate before saving (the admin form) or without saving (counting a draft)."""
    return _check_rules(tenant=tenant, rules=rules, segment=segment)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise SegmentError("Give the segment a name.", field="name")
    if len(name) > 200:
        raise SegmentError("The name is longer than 200 characters.", field="name")
    return name


@transaction.atomic
def segment_create(*, tenant: Tenant, name: str, rules: object, description: str = "") -> Segment:
    """Save a new segment and compute its members (recording their entry)."""
    tree = _check_rules(tenant=tenant, rules=rules, segment=None)
    segment = Segment(
        tenant=tenant,
        name=_clean_name(name),
        description=description.strip(),
        rules=tree,
        time_relative=rule_tree.is_time_relative(tree),
    )
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        raise SegmentError("A segment with this name exists already.", field="name") from None
    segment_membership_refresh(segment=segment)
    return segment


@transaction.atomic
def segment_update(
    *, tenant: Tenant, segment: Segment, name: str, rules: object, description: str = ""
) -> Segment:
    """Change a segment; its membership follows at once."""
    segment = Segment.objects.select_for_update().get(tenant=tenant, pk=segment.pk)
    tree = _check_rules(tenant=tenant, rules=rules, segment=segment)
    segment.name = _clean_name(name)
    segment.description = description.strip()
    segment.rules = tree
    segment.time_relative = rule_tree.is_time_relative(tree)
    segment.updated_at = timezone.now()
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        raise SegmentError("A segment with this name exists already.", field="name") from None
    segment_membership_refresh(segment=segment)
    return segment


def _segment_lock(*, tenant: Tenant, segment: Segment) -> bool:
    """Lock the segment's row until the transaction ends; False when it no longer exists."""
    locked = Segment.objects.select_for_update().filter(tenant=tenant, pk=segment.pk)
    return bool(list(locked.values_list("pk", flat=True)))


def segment_users(*, tenant: Tenant, segment: Segment) -> list[str]:
    """Where campaigns and journeys use `segment`, in words (segments.registry.SEGMENT_USERS:
    the apps above register); other segments' rules are `segment_delete`'s own check."""
    return sorted(
        {use for finder in SEGMENT_USERS for use in finder(tenant=tenant, segment=segment)}
    )


@transaction.atomic
def segment_delete(*, tenant: Tenant, segment: Segment) -> None:
    """Delete a segment nothing uses. Refused with SegmentError while other segments' rules
    refer to it, and with SegmentInUse (naming them all) while a campaign or a journey does:
    any campaign, finished ones too, since its segments are part of its record."""
    others = sorted(
        s.name
        for s in Segment.objects.filter(tenant=tenant).exclude(pk=segment.pk)
        if str(segment.public_id) in rule_tree.references(s.rules)
    )
    uses = segment_users(tenant=tenant, segment=segment)
    if uses:
        named = sorted([*uses, *(f"segment “{name}”" for name in others)])
        raise SegmentInUse("This segment is used by " + "; ".join(named) + ".")
    if others:
        raise SegmentError(f"Other segments use this one: {', '.join(others)}.")
    # Wait for a refresh that holds the segment: deleting collects the memberships first, and one
    # that the refresh then adds would break the foreign key when this commits.
    if _segment_lock(tenant=tenant, segment=segment):
        try:
            Segment.objects.filter(tenant=tenant, pk=segment.pk).delete()
        except ProtectedError:  # a campaign took the segment between the check and the lock
            raise SegmentInUse("This segment is used by a campaign.") from None


def _sql(queryset: Any) -> tuple[str, tuple[Any, ...]]:
    return queryset.query.sql_with_params()


# Compiling a rule tree to SQL costs about a millisecond of Django per segment: more than running
# the query for the few contacts of one ingested event. Incremental refreshes therefore reuse a
# segment's SQL for a given number of contacts within the same minute (rule windows count in
# days), filling in the contact ids: they are compiled as unique negative marks, and a parameter
# at or below _SCOPE_MARK is the scope's contact at that offset.
_SCOPE_MARK = -(10**15)
_COMPILED_MAX = 512
_compiled: OrderedDict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = OrderedDict()


def _scoped_matching(
    *, segment: Segment, scope: Sequence[int], now: datetime
) -> tuple[str, list[Any]]:
    """SQL and parameters selecting `member_id` of the contacts of `scope` that match."""
    minute = now.replace(second=0, microsecond=0)
    tenant = segment.tenant
    key = (
        connection.alias,
        segment.pk,
        json.dumps(segment.rules, sort_keys=True),
        tenant.timezone,
        len(scope),
        minute,
    )
    compiled = _compiled.get(key)
    if compiled is None:
        marks = [_SCOPE_MARK - i for i in range(len(scope))]
        sql, params = _sql(
            segment_contacts(tenant=tenant, rules=segment.rules, scope=marks, now=minute).values(
                member_id=F("pk")
            )
        )
        compiled = _compiled[key] = (sql, tuple(params))
        while len(_compiled) > _COMPILED_MAX:
            _compiled.popitem(last=False)
    else:
        _compiled.move_to_end(key)
    sql, params = compiled
    filled = [
        scope[_SCOPE_MARK - p]
        if isinstance(p, int) and not isinstance(p, bool) and p <= _SCOPE_MARK
        else p
        for p in params
    ]
    return sql, filled


def _differing(*, segments: Sequence[Segment], scope: Sequence[int], now: datetime) -> set[int]:
    """The segments (pks) that some contact of `scope` would enter or leave: one read-only
    statement for all of them, testing each contact's match against its membership (each
    segment's rule appears once, so PostgreSQL plans it once)."""
    if not scope or not segments:
        return set()
    table = SegmentMembership._meta.db_table
    contacts = Contact._meta.db_table
    marks = ", ".join(["%s"] * len(scope))
    parts: list[str] = []
    params: list[Any] = []
    for segment in segments:
        sql, matching = _scoped_matching(segment=segment, scope=scope, now=now)
        parts.append(
            f"SELECT %s AS segment FROM {contacts} s WHERE s.tenant_id = %s AND s.id IN ({marks})"
            f" AND (s.id IN (SELECT m.member_id FROM ({sql}) AS m))"
            # A scalar subquery with LIMIT, not EXISTS: PostgreSQL may turn an EXISTS into a
            # hashed subplan that reads every member of the segment, and did so for a segment
            # whose statistics were stale (65k members hashed per call: 139 ms instead of 1 ms);
            # a scalar subquery is always this contact's index probe.
            f" <> ((SELECT 1 FROM {table} x WHERE x.tenant_id = %s AND x.segment_id = %s"
            " AND x.contact_id = s.id LIMIT 1) IS NOT NULL)"
        )
        tenant_id = segment.tenant_id
        params += [segment.pk, tenant_id, *scope, *matching, tenant_id, segment.pk]
    sql = " UNION ".join(parts)
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row[0] for row in cursor.fetchall()}
    # Runs after every ingestion chunk; planning the segments' rules costs several times what
    # running them for a few contacts does. So the statement is prepared and, in this
    # transaction only, PostgreSQL keeps a generic plan for it (config/settings.py forces custom
    # plans elsewhere). The accesses are driven by the scope's contact ids, which a generic plan
    # serves as well as a custom one (RFM conditions rank the whole tenant whatever the plan).
    # Forced, not `auto`: since events are partitioned by month a generic plan cannot prune
    # at plan time, so its estimate counts every month and `auto` replanned on every call
    # (1 contact, 6 segments, 1M contacts: 2.5 ms with `auto`, 0.9 ms forced; the months are
    # still pruned when the plan starts, from the parameters).
    with connection.wrap_database_errors, raw_cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('plan_cache_mode'),"
            " set_config('plan_cache_mode', 'force_generic_plan', true)"
        )
        previous = cursor.fetchone()[0]  # type: ignore[index]
        cursor.execute(sql, params, prepare=True)
        found = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT set_config('plan_cache_mode', %s, true)", [previous])
    return found


@transaction.atomic(savepoint=False)  # nested in a caller's transaction, no savepoint per segment
def segment_membership_refresh(
    *,
    segment: Segment,
    scope: Sequence[int] | None = None,
    now: datetime | None = None,
    checked: bool = False,
) -> SegmentMembershipChange:
    """Bring the segment's membership up to date — for every contact, or only for `scope`
    (contact ids) — recording `Segment Entered` / `Segment Exited` events and announcing the
    change after commit. `checked`: the caller found with `_differing` that `scope` changes."""
    tenant = segment.tenant
    now = now or timezone.now()
    if (
        scope is not None
        and not checked
        and not _differing(segments=[segment], scope=scope, now=now)
    ):
        # The common case after an event: nothing changes, so take no lock and write nothing.
        return SegmentMembershipChange()
    # Two refreshes of one segment take turns, so neither records a change the other made.
    if not _segment_lock(tenant=tenant, segment=segment):
        # Deleted since the caller selected it (a deletion commits while this waits for the
        # lock): nothing to refresh, and the caller's other segments still are.
        return SegmentMembershipChange()
    matching_params: Sequence[Any]
    if scope is None:
        matching_sql, matching_params = _sql(
            segment_contacts(tenant=tenant, rules=segment.rules, now=now).values(member_id=F("pk"))
        )
    else:
        matching_sql, matching_params = _scoped_matching(segment=segment, scope=scope, now=now)
    table = SegmentMembership._meta.db_table
    scope_sql, scope_params = "", []
    if scope is not None:
        scope_sql = (
            f" AND x.contact_id IN ({', '.join(['%s'] * len(scope))})" if scope else " AND 1 = 0"
        )
        scope_params = list(scope)
    # A full refresh compares two large sets. Right after a big change the membership table's
    # statistics are stale (a new segment's rows look like a handful), and PostgreSQL then picks
    # a nested-loop anti-join that compares every member with every match: hours at a million
    # contacts. Hash joins are the right plan for sets this size, whatever the statistics say.
    postgresql = connection.vendor == "postgresql"
    set_oriented = scope is None and postgresql

    def insert(matching: str) -> str:
        return (
            f"INSERT INTO {table} (tenant_id, segment_id, contact_id, entered_at)"
            f" SELECT %s, %s, m.member_id, %s FROM {matching} AS m"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.tenant_id = %s"
            " AND x.segment_id = %s AND x.contact_id = m.member_id)"
            " ON CONFLICT DO NOTHING RETURNING contact_id"
        )

    def delete(matching: str) -> str:
        return (
            f"DELETE FROM {table} WHERE id IN (SELECT x.id FROM {table} x"
            f" WHERE x.tenant_id = %s AND x.segment_id = %s{scope_sql} AND NOT EXISTS"
            f" (SELECT 1 FROM {matching} AS m WHERE m.member_id = x.contact_id))"
            " RETURNING contact_id"
        )

    keys = [tenant.pk, segment.pk]
    with connection.cursor() as cursor:
        if set_oriented:
            cursor.execute("SET LOCAL enable_nestloop = off")
        if postgresql:
            # One statement: the matching contacts are computed once, for the INSERT and the
            # DELETE alike. Both see the same snapshot: the DELETE never sees what the INSERT
            # adds.
            cursor.execute(
                f"WITH matching AS MATERIALIZED ({matching_sql}),"
                f" entered AS ({insert('matching')}), exited AS ({delete('matching')})"
                " SELECT true, contact_id FROM entered"
                " UNION ALL SELECT false, contact_id FROM exited",
                [*matching_params, *keys, now, *keys, *keys, *scope_params],
            )
            rows = cursor.fetchall()
            entered = sorted(pk for went_in, pk in rows if went_in)
            exited = sorted(pk for went_in, pk in rows if not went_in)
        else:
            inline = f"({matching_sql})"
            cursor.execute(insert(inline), [*keys, now, *matching_params, *keys])
            entered = sorted(row[0] for row in cursor.fetchall())
            cursor.execute(delete(inline), [*keys, *scope_params, *matching_params])
            exited = sorted(row[0] for row in cursor.fetchall())
        if set_oriented:
            cursor.execute("SET LOCAL enable_nestloop = on")
    change = SegmentMembershipChange(entered=entered, exited=exited)
    properties = {"segment_id": str(segment.public_id), "segment": segment.name}
    stamp = now.isoformat()
    # The refresh time makes each entry and exit a fact of its own (a contact may leave and
    # come back); running the same refresh twice finds nothing to change the second time.
    entered_key = f"segment:{segment.public_id}:entered:{stamp}"
    exited_key = f"segment:{segment.public_id}:exited:{stamp}"
    events_record(
        tenant=tenant,
        facts=[
            *(Fact(pk, ENTERED, entered_key, SOURCE, properties) for pk in entered),
            *(Fact(pk, EXITED, exited_key, SOURCE, properties) for pk in exited),
        ],
        fresh=True,  # the keys carry this refresh's time: no need to look for stored ones
    )
    if scope is None:  # a full refresh counts afresh (and stamps the time)
        segment.member_count = SegmentMembership.objects.filter(
            tenant=tenant, segment=segment
        ).count()
        segment.refreshed_at = now
        Segment.objects.filter(tenant=tenant, pk=segment.pk).update(
            member_count=segment.member_count, refreshed_at=now
        )
    elif entered or exited:  # counting a big segment per event would cost more than the rest
        Segment.objects.filter(tenant=tenant, pk=segment.pk).update(
            member_count=F("member_count") + len(entered) - len(exited)
        )
        segment.member_count += len(entered) - len(exited)
    if entered or exited:
        transaction.on_commit(
            partial(
                segment_membership_changed.send,
                sender=None,
                tenant=tenant,
                segment=segment,
                entered=entered,
                exited=exited,
            ),
            robust=True,  # a failing receiver (the broker down) must not fail the committed caller
        )
    return change


def segments_in_dependency_order(segments: Iterable[Segment]) -> list[Segment]:
    """Segments that others refer to come first, so those see fresh memberships."""
    by_id = {str(s.public_id): s for s in segments}
    ordered: list[Segment] = []
    placed: set[str] = set()

    def place(key: str, trail: frozenset[str]) -> None:
        if key in placed or key not in by_id or key in trail:
            return
        for ref in rule_tree.references(by_id[key].rules):
            place(ref, trail | {key})
        placed.add(key)
        ordered.append(by_id[key])

    for key in sorted(by_id):
        place(key, frozenset())
    return ordered


@transaction.atomic
def segment_memberships_refresh_contacts(*, tenant: Tenant, contact_ids: Sequence[int]) -> int:
    """Re-evaluate every segment of the tenant for these contacts (after their events or
    profile changed), in one transaction. Returns how many memberships changed."""
    scope, now = list(contact_ids), timezone.now()
    segments = list(Segment.objects.filter(tenant=tenant))
    for segment in segments:
        segment.tenant = tenant  # the caller's: no join, no second read of the tenant
    ordered = segments_in_dependency_order(segments)
    differing = _differing(segments=ordered, scope=scope, now=now)
    changed_ids: set[str] = set()
    changed = 0
    for segment in ordered:
        # A segment that includes one whose membership just changed may change too.
        if segment.pk in differing or rule_tree.references(segment.rules) & changed_ids:
            change = segment_membership_refresh(
                segment=segment, scope=scope, now=now, checked=segment.pk in differing
            )
            if change.entered or change.exited:
                changed_ids.add(str(segment.public_id))
                changed += len(change.entered) + len(change.exited)
    return changed


def segment_memberships_refresh_all(
    *, tenant: Tenant | None = None, time_relative_only: bool = True
) -> int:
    """The scheduled refresh: segments whose membership the clock alone can change."""
    segments = Segment.objects.select_related("tenant")
    if tenant is not None:
        segments = segments.filter(tenant=tenant)
    if time_relative_only:
        segments = segments.filter(time_relative=True)
    changed = 0
    by_tenant: dict[int, list[Segment]] = {}
    for segment in segments:
        by_tenant.setdefault(segment.tenant_id, []).append(segment)
    for group in by_tenant.values():
        for segment in segments_in_dependency_order(group):
            change = segment_membership_refresh(segment=segment)
            changed += len(change.entered) + len(change.exited)
    return changed


def segment_create_from_preset(*, tenant: Tenant, key: str) -> Segment:
    """One of the ready-made segments (segments.presets.PRESETS) as the team's own segment."""
    from segments.presets import preset_add  # presets create through this module

    return preset_add(tenant=tenant, key=key)
