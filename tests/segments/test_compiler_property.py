"""Property test: on seeded random contacts and events, the compiled query selects exactly the
contacts that a brute-force Python evaluator (tests/segments/reference.py) selects, for many
seeded random rule trees; and each kind's per-contact evaluation (segments.registry.matches,
what journeys branch with) answers as the reference does for every contact it is asked about.
A failure prints the tree, its summary and the contacts in dispute; rerun with the same seed to
get the same data and trees."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from audience.models import Consent, Contact, LifecycleStage
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import registry, rules
from segments.compiler import Compiler, segment_contacts, segment_count
from segments.models import Segment, SegmentMembership
from segments.services import _differing
from tests.segments.reference import ContactRow, Reference, load

pytestmark = pytest.mark.django_db

DEFAULT_SEED = 20260301
# Another seed explores other data and trees: SEGMENTS_PROPERTY_SEED=7 pytest …
SEED = int(os.environ.get("SEGMENTS_PROPERTY_SEED", DEFAULT_SEED))
TREES = 150
EVALUATED = 12  # contacts evaluated one by one per tree (every contact for every 10th tree)
ZONE = "America/New_York"
# 21:30 on 28 February in New York (a common year; summer time starts on 8 March): days and
# months differ between UTC and the tenant's zone, and a rolling week crosses the change.
NOW = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
SKIP = object()  # a property or trait left out

FIRST_NAMES = ["Ann", "ann", "Bob", "BOB", "Cyd", "Dee", "Eve", "Anna"]
LAST_NAMES = ["Lee", "O_Neil", "Lee-Smith", "Moss"]
DOMAINS = ["example.com", "shop.test", "Mail.ORG"]
LOCALES = ["de-DE", "en-US", "en-us", "fr"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo"]
ATTRIBUTES: dict[str, list[Any]] = {
    "plan": ["gold", "Gold", "silver", "free", 3, True, "3"],
    "score": [0, 1, 2.5, 3, 3.0, 10, -4, "3", "ten", True, False],
    "vip": [True, False, "true", "yes", 1],
    "city": ["Berlin", "berlin", "Paris", "New York", ""],
    "tags": [["a", "b"], ["gold"]],
}
EVENTS = [
    "Order Completed",
    "Product Viewed",
    "Product Added",
    "Product Added to Wishlist",
    "Signed Up",
]
PROPERTIES: dict[str, list[Any]] = {
    "total": [10, 25.5, 40, 99, 100, 120, 250, "n/a", "100", True, SKIP, SKIP],
    "revenue": [50, 75.5, "50", SKIP, SKIP, SKIP],
    "value": [30, SKIP, SKIP, SKIP],
    "currency": ["EUR", "eur", "USD", SKIP],
    "coupon": ["XMAS", "xmas10", "SPRING", SKIP, SKIP],
    "sku": ["A-1", "a-1", "B_2", "C%3"],
    "price": [9.5, 10, 20, "10", SKIP],
    "category": ["Shoes", "shoes", "Hats", SKIP],
    "qty": [1, 2, 3, 3.0, "3", SKIP],
}
TEXT_VALUES: dict[str, list[str]] = {
    "email": ["ann", "@shop.test", "EXAMPLE", ".org", "bob1@shop.test", "_", "u", "nobody@x.y"],
    "first_name": [*FIRST_NAMES, "an", "b", "%"],
    "last_name": [*LAST_NAMES, "o_", "lee", "-"],
    "phone": ["+49", "555", "+1 555 0100"],
    "user_id": ["u1", "U12", "u", "anon-3"],
    "timezone": [*ZONES, "europe", "/"],
    "locale": [*LOCALES, "en", "-"],
    "json": ["gold", "GOLD", "3", "3.0", "true", "e", "berlin", "a", "[", "yes", "2.5"],
    "property": ["EUR", "usd", "xmas", "a-1", "B_2", "C%3", "shoes", "100", "3", "n/a", "%"],
}
CONTACT_TEXT = ["email", "first_name", "last_name", "phone", "user_id", "timezone", "locale"]
NUMBERS = [-5, 0, 1, 2.5, 3, 10, 25.5, 40, 99.5, 100, 250]


# --- data --------------------------------------------------------------------------------------


def moment(rng: random.Random) -> datetime:
    """Mostly the last 14 months, a few in the near future; some exactly at a midnight in the
    tenant's zone, where "before"/"after" a day change their answer."""
    if rng.random() < 0.1:
        day = NOW.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=rng.randint(-1, 60))
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    seconds = rng.randint(-2 * 86400, 420 * 86400)
    return NOW - timedelta(seconds=seconds)


def birthday(rng: random.Random) -> str:
    if rng.random() < 0.4:  # around today, the year end and 29 February
        return rng.choice(["--02-28", "--02-29", "1996-02-29", "--03-01", "1990-03-05", "--12-31"])
    day = date(2000, 1, 1) + timedelta(days=rng.randint(0, 365))  # 2000 has a 29 February
    year = 1996 if f"{day:%m-%d}" == "02-29" else rng.randint(1950, 2005)
    return f"{year}-{day:%m-%d}"


def pick(rng: random.Random, pool: dict[str, list[Any]], share: float) -> dict[str, Any]:
    chosen = {key: rng.choice(values) for key, values in pool.items() if rng.random() < share}
    return {key: value for key, value in chosen.items() if value is not SKIP}


def generate(rng: random.Random, tenant: Any, *, contacts: int) -> None:
    """Contacts made by messages, as in production (identify traits, tracked events with their
    timestamps), then the columns no message sets (creation time, consent)."""
    messages = []
    for n in range(contacts):
        anonymous = rng.random() < 0.2
        who = {"anonymousId": f"anon-{n}"} if anonymous else {"userId": f"u{n}"}
        if not anonymous:
            traits: dict[str, Any] = pick(rng, ATTRIBUTES, 0.5)
            optional = {
                "email": f"{rng.choice(['ann', 'bob', 'sales'])}{n}@{rng.choice(DOMAINS)}",
                "firstName": rng.choice(FIRST_NAMES),
                "lastName": rng.choice(LAST_NAMES),
                "phone": rng.choice(["+49 30 1234", "+1 555 0100"]),
                "locale": rng.choice(LOCALES),
                "timezone": rng.choice(ZONES),
                "birthday": birthday(rng),
            }
            traits.update({k: v for k, v in optional.items() if rng.random() < 0.6})
            messages.append(
                {"type": "identify", **who, "traits": traits, "timestamp": moment(rng).isoformat()}
            )
        for _ in range(rng.randint(1 if anonymous else 0, 10)):
            messages.append(
                {
                    "type": "track",
                    "event": rng.choice(EVENTS),
                    **who,
                    "properties": pick(rng, PROPERTIES, 0.6),
                    "timestamp": moment(rng).isoformat(),
                }
            )
    calls_record(tenant=tenant, calls=[parse_call(m) for m in messages])
    # Stages are computed from behaviour by a task after ingestion (audience/stages.py), which
    # does not run here: each contact gets one at random (own generator, so the rest of what
    # a seed gives stays the same), so the lifecycle condition has every stage to tell apart.
    stages = random.Random(f"stages-{tenant.slug}")
    for contact in Contact.objects.filter(tenant=tenant).order_by("pk"):
        Contact.objects.filter(pk=contact.pk).update(
            created_at=moment(rng),
            last_seen_at=None if rng.random() < 0.1 else contact.last_seen_at,
            email_consent=rng.choice(Consent.values),
            push_consent=rng.choice(Consent.values),
            lifecycle_stage=stages.choice(LifecycleStage.values),
        )
    reach(random.Random(f"reach-{tenant.slug}"), tenant)


def reach(rng: random.Random, tenant: Any) -> None:
    """What reachability reads besides consent: suppressed addresses and push subscriptions
    (own generator, so the trees a seed gives stay the same)."""
    from messaging.models import PushSubscription, Suppression

    for contact in Contact.objects.filter(tenant=tenant).order_by("pk"):
        if contact.email and rng.random() < 0.2:
            Suppression.objects.create(
                tenant=tenant, address=contact.email.lower(), reason="bounced"
            )
        if rng.random() < 0.4:
            PushSubscription.objects.create(
                tenant=tenant,
                contact=contact,
                endpoint=f"https://push.example/{contact.pk}",
                p256dh="k",
                auth="a",
                active=rng.random() < 0.7,
            )


# --- trees -------------------------------------------------------------------------------------


def a_day(rng: random.Random) -> str:
    return (NOW.date() - timedelta(days=rng.randint(-2, 420))).isoformat()


def days(rng: random.Random) -> int:
    return rng.choice([0, 1, 2, 7, 30, 90, 180, 365, 1000])


def window(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.5:
        return None
    if roll < 0.75:
        return {"last_days": rng.choice([1, 7, 30, 90, 365])}
    first, second = sorted([a_day(rng), a_day(rng)])
    if first == second or rng.random() < 0.3:
        return {rng.choice(["after", "before"]): first}
    return {"after": first, "before": second}


def text_test(rng: random.Random, pool: str, operators: list[str]) -> tuple[str, Any]:
    operator = rng.choice(operators)
    values = TEXT_VALUES[pool]
    if operator in ("in_list", "not_in_list"):
        return operator, rng.sample(values, rng.randint(1, 3))
    if operator in ("exists", "not_exists"):
        return operator, None
    if operator in ("gt", "gte", "lt", "lte"):
        return operator, rng.choice(NUMBERS)
    if operator in ("equals", "not_equals") and pool in ("json", "property"):
        return operator, rng.choice([*values, *NUMBERS, 3.0, True, False])
    return operator, rng.choice(values)


def attribute(rng: random.Random) -> dict[str, Any]:
    field = rng.choice(
        CONTACT_TEXT
        + [f"attributes.{key}" for key in [*ATTRIBUTES, "absent"]] * 2
        + ["created_at", "last_seen_at", "birthday", "cart", "wishlist"]
    )
    if field.startswith("attributes."):
        operator, value = text_test(
            rng, "json", sorted(rules.TEXT_OPERATORS | rules.NUMBER_OPERATORS)
        )
    elif field in ("created_at", "last_seen_at"):
        operator = rng.choice(sorted(rules.DATE_OPERATORS))
        value = a_day(rng) if operator in ("before", "after") else days(rng)
    elif field == "birthday":
        operator = rng.choice(sorted(rules.BIRTHDAY_OPERATORS))
        value = rng.choice([0, 1, 7, 10, 30, 90, 366])
    elif field in ("cart", "wishlist"):
        operator, value = rng.choice(["exists", "not_exists"]), None
    else:
        operator, value = text_test(rng, field, sorted(rules.TEXT_OPERATORS))
    return {"type": "attribute", "field": field, "operator": operator, "value": value}


def event(rng: random.Random) -> dict[str, Any]:
    filters = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        prop = rng.choice([*PROPERTIES, "plan", "missing"])
        operator, value = text_test(rng, "property", sorted(rules.PROPERTY_OPERATORS))
        filters.append({"property": prop, "operator": operator, "value": value})
    count = None
    if rng.random() < 0.5:
        count = {"operator": rng.choice(sorted(rules.COUNT_OPERATORS)), "value": rng.randint(0, 4)}
    return {
        "type": "event",
        "event": rng.choice([*EVENTS, "Never Happened"]),
        "did": rng.random() < 0.7,
        "where": filters,
        "count": count,
        "window": window(rng),
    }


def event_time(rng: random.Random) -> dict[str, Any]:
    operator = rng.choice(["before", "after", "within_last_days", "more_than_days_ago"])
    return {
        "type": "event_time",
        "event": rng.choice(EVENTS),
        "which": rng.choice(["first", "last"]),
        "operator": operator,
        "value": a_day(rng) if operator in ("before", "after") else days(rng),
    }


def metric(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(sorted(rules.METRICS))
    if name == "last_order_date":
        operator = rng.choice(["before", "after", "within_last_days", "more_than_days_ago"])
        value: Any = a_day(rng) if operator in ("before", "after") else days(rng)
    else:
        operator = rng.choice(["gt", "gte", "lt", "lte", "equals"])
        value = rng.choice([0, 1, 2, 3, 10, 25.5, 50, 100, 120, 250, 400])
    return {
        "type": "metric",
        "metric": name,
        "operator": operator,
        "value": value,
        "window": window(rng),
    }


def condition(rng: random.Random) -> dict[str, Any]:
    kind = rng.choices(
        ["attribute", "event", "event_time", "metric", "reachable", "lifecycle"],
        weights=[5, 4, 2, 3, 1, 1],
    )[0]
    if kind == "reachable":
        return {
            "type": "reachable",
            "channel": rng.choice(["email", "push"]),
            "reachable": bool(rng.random() < 0.7),
        }
    if kind == "lifecycle":
        stages = rng.sample(LifecycleStage.values, rng.randint(1, 3))
        return {"type": "lifecycle", "operator": rng.choice(["in", "not_in"]), "value": stages}
    return {"attribute": attribute, "event": event, "event_time": event_time, "metric": metric}[
        kind
    ](rng)


def tree(rng: random.Random, depth: int = 1) -> dict[str, Any]:
    """A group of 1 to 3 children; groups nest up to three levels deep."""
    children = [
        tree(rng, depth + 1) if depth < 3 and rng.random() < 0.3 else condition(rng)
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "type": "group",
        "match": rng.choice(["all", "any"]),
        "negate": rng.random() < 0.25,
        "children": children,
    }


# --- the test ----------------------------------------------------------------------------------


def explain(
    n: int,
    rules_tree: dict[str, Any],
    got: set[int],
    expected: set[int],
    contacts: list[ContactRow],
) -> str:
    disputed = [c for c in contacts if c.pk in got ^ expected]
    lines = [
        f"Tree #{n} (seed {SEED}): {rules.describe(rules_tree)}",
        json.dumps(rules_tree, indent=1),
        f"compiled only: {sorted(got - expected)}; reference only: {sorted(expected - got)}",
    ]
    for c in disputed[:3]:
        fields = {
            k: v
            for k, v in c.fields.items()
            if v not in ("", None, [], {}) and k not in ("id", "tenant_id", "public_id")
        }
        lines.append(f"contact {c.pk}: {fields}")
        lines.extend(f"  {e.occurred_at.isoformat()} {e.name} {e.properties}" for e in c.events)
    return "\n".join(lines)


def test_it_selects_what_a_brute_force_reference_selects(world: Any) -> None:
    rng = random.Random(SEED)
    tenant = world.acme
    tenant.timezone = ZONE
    tenant.save()
    generate(rng, tenant, contacts=60)
    generate(random.Random(SEED + 1), world.globex, contacts=10)  # must never show up
    contacts = load(tenant)
    reference = Reference(timezone=ZONE, now=NOW)
    everyone = {c.pk for c in contacts}
    probe = Segment.objects.create(
        tenant=tenant, name="probe", rules=rules.validate(tree(random.Random(0)))
    )
    profiles = {c.pk: c for c in Contact.objects.filter(tenant=tenant)}
    sampler = random.Random(SEED + 2)  # its own, so the trees stay those of the seed
    evaluated = 0
    telling = 0  # trees that select some contacts but not all
    intersections = 0  # trees segment_count may count as an intersection of subqueries
    pushed_down = 0  # … or with the contacts' conditions pushed into an event aggregate
    for n in range(TREES):
        raw = tree(rng)
        rules_tree = rules.validate(raw)
        expected = {c.pk for c in contacts if reference.matches(rules_tree, c)}
        compiled = segment_contacts(tenant=tenant, rules=rules_tree, now=NOW)
        got = set(compiled.values_list("pk", flat=True))
        assert got == expected, explain(n, rules_tree, got, expected, contacts)
        counted = segment_count(tenant=tenant, rules=rules_tree, now=NOW)  # its own SQL
        assert counted == len(expected), explain(n, rules_tree, got, expected, contacts)
        # Whichever way segment_count picks for this tree and data, every way must agree.
        compiler = Compiler(tenant=tenant, now=NOW)
        parts = compiler.intersection_parts(rules_tree)
        if parts is not None and connection.vendor == "postgresql":
            ways = [compiler._intersection_sql(*parts), compiler._pushed_down_sql(*parts)]
            for sql, params in filter(None, ways):
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    assert cursor.fetchone()[0] == len(expected), explain(
                        n, rules_tree, got, expected, contacts
                    )
            intersections += 1
            pushed_down += ways[1] is not None
        # One contact at a time, as a journey branches: the same answer, contact by contact.
        asked = sorted(everyone) if n % 10 == 0 else sampler.sample(sorted(everyone), EVALUATED)
        context = registry.Context(tenant=tenant, now=NOW)
        one_by_one = {pk for pk in asked if registry.matches(rules_tree, profiles[pk], context)}
        assert one_by_one == expected & set(asked), "evaluated one by one: " + explain(
            n, rules_tree, one_by_one, expected & set(asked), contacts
        )
        evaluated += len(asked)
        telling += 0 < len(expected) < len(everyone)
        if n % 3 == 0:  # a scope narrows the answer, never changes it
            scope = rng.sample(sorted(everyone), 12)
            scoped = segment_contacts(tenant=tenant, rules=rules_tree, now=NOW, scope=scope)
            assert set(scoped.values_list("pk", flat=True)) == expected & set(scope), explain(
                n, rules_tree, got, expected, contacts
            )
            # The incremental check runs the same rules another way (prepared, server-side
            # parameters on PostgreSQL): it must see a difference exactly when there is one.
            probe.rules = rules_tree
            for members in (expected & set(scope), set(), set(scope) - expected, set(scope)):
                SegmentMembership.objects.filter(segment=probe).delete()
                SegmentMembership.objects.bulk_create(
                    SegmentMembership(tenant=tenant, segment=probe, contact_id=pk, entered_at=NOW)
                    for pk in members
                )
                differs = members != expected & set(scope)
                assert _differing(segments=[probe], scope=scope, now=NOW) == (
                    {probe.pk} if differs else set()
                ), explain(n, rules_tree, got, expected, contacts)
    assert telling >= TREES // 3, f"only {telling} of {TREES} trees told contacts apart"
    assert evaluated >= TREES * EVALUATED
    if connection.vendor == "postgresql":
        assert intersections >= TREES // 10, f"only {intersections} trees took the other path"
        assert pushed_down >= TREES // 30, f"only {pushed_down} trees were pushed down"


def test_it_generates_varied_data(world: Any) -> None:
    """The generator keeps making what the property test needs to mean something."""
    generate(random.Random(DEFAULT_SEED), world.acme, contacts=60)
    contacts = load(world.acme)
    events = [e for c in contacts for e in c.events]
    assert 50 <= len(contacts) <= 60 and 250 <= len(events) <= 500
    assert {e.name for e in events} >= {*EVENTS, "Identify"}
    stages = {c.fields["lifecycle_stage"] for c in contacts}
    assert stages == set(LifecycleStage.values)
    assert any(c.fields["cart"] for c in contacts) and any(not c.fields["cart"] for c in contacts)
    assert any(c.fields["birthday_month"] == 2 and c.fields["birthday_day"] == 29 for c in contacts)
    assert any(c.fields["last_seen_at"] is None for c in contacts)
