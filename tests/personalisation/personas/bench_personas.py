"""What a persona run costs on a big team: time and memory of each step.

    DATABASE_URL=postgres://wayfarer@127.0.0.1:5432/<db> .venv/bin/python manage.py migrate
    DATABASE_URL=… .venv/bin/python -m tests.personalisation.personas.bench_personas \
        --contacts 100000

Makes a team `bench-personas-<n>` (kept, reused when it exists) with `n` contacts: last seen over
the past year (a tenth never seen), a third with 1-6 orders of 6 categories, about two "Product
Viewed" events each over the 180-day window, emails sent to half with opens and clicks, written with
bulk_create. Then times a run (services.persona_run_execute) and its steps, and the peak memory
of this process (ru_maxrss). Not a test: a measurement (docs/personalisation/personas.md).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from datetime import timedelta
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.utils import timezone  # noqa: E402

from audience.models import Contact, Event, Order  # noqa: E402
from core import rls  # noqa: E402
from tenants.models import Tenant  # noqa: E402

CATEGORIES = ["tents", "sleeping", "footwear", "clothing", "cooking", "packs"]
BATCH = 20_000


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(tenant: Tenant, n: int, seed: int) -> None:
    rng = random.Random(seed)
    now = timezone.now()
    started = time.perf_counter()
    batch: list[Contact] = []
    for i in range(n):
        seen = None if rng.random() < 0.1 else now - timedelta(days=rng.expovariate(1 / 60))
        batch.append(
            Contact(
                tenant=tenant,
                email=f"c{i}@bench.example",
                created_at=now - timedelta(days=rng.randrange(1, 700)),
                last_seen_at=seen,
            )
        )
        if len(batch) == BATCH:
            Contact.objects.bulk_create(batch)
            batch = []
    Contact.objects.bulk_create(batch)
    say(f"contacts: {n} in {time.perf_counter() - started:.0f} s")
    ids = list(Contact.objects.filter(tenant=tenant).values_list("pk", flat=True))
    # One event of the oldest month first, so that its partition exists (PostgreSQL).
    from audience.partitions import partitions_ensure

    Event.objects.create(
        tenant=tenant,
        contact_id=ids[0],
        name="Oldest",
        occurred_at=now - timedelta(days=179),
        message_id="bench-oldest",
    )
    partitions_ensure(now=now)
    started = time.perf_counter()
    orders: list[Order] = []
    events: list[Event] = []
    made_orders = made_events = 0

    def flush(force: bool = False) -> None:
        nonlocal orders, events, made_orders, made_events
        if orders and (force or len(orders) >= BATCH):
            Order.objects.bulk_create(orders)
            made_orders += len(orders)
            orders = []
        if events and (force or len(events) >= BATCH):
            Event.objects.bulk_create(events)
            made_events += len(events)
            events = []

    for pk in ids:
        favourite = rng.choice(CATEGORIES)
        if rng.random() < 0.33:
            for o in range(rng.randrange(1, 7)):
                category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
                value = Decimal(rng.randrange(20, 400))
                orders.append(
                    Order(
                        tenant=tenant,
                        contact_id=pk,
                        message_id=f"o-{pk}-{o}",
                        occurred_at=now - timedelta(days=rng.randrange(0, 700)),
                        value=value,
                        currency="EUR",
                        properties={"products": [{"sku": f"{category}-1", "category": category}]},
                    )
                )
        for v in range(int(rng.expovariate(1 / 2))):
            category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
            events.append(
                Event(
                    tenant=tenant,
                    contact_id=pk,
                    name="Product Viewed",
                    properties={"sku": f"{category}-1", "category": category},
                    occurred_at=now - timedelta(days=rng.randrange(0, 179)),
                    message_id=f"v-{pk}-{v}",
                )
            )
        if rng.random() < 0.5:
            opener = rng.random()
            for m in range(rng.randrange(1, 6)):
                when = now - timedelta(days=rng.randrange(0, 179))
                for name, p in (
                    ("Email Sent", 1.0),
                    ("Email Opened", opener),
                    ("Email Link Clicked", opener / 3),
                ):
                    if rng.random() < p:
                        events.append(
                            Event(
                                tenant=tenant,
                                contact_id=pk,
                                name=name,
                                occurred_at=when,
                                message_id=f"m-{pk}-{m}-{name}",
                            )
                        )
        flush()
    flush(force=True)
    say(f"orders: {made_orders}, events: {made_events} in {time.perf_counter() - started:.0f} s")


CATEGORY_ARRAY = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
# The same shop as `make`, generated inside PostgreSQL (a million contacts in minutes rather than
# the better part of an hour through the ORM on a busy machine).
SQL_STEPS = [
    (
        "contacts",
        "INSERT INTO audience_contact (public_id, user_id, email, phone, first_name, last_name,"
        " timezone, locale, attributes, email_consent, email_consent_source, push_consent,"
        " push_consent_source, lifecycle_stage, cart, wishlist, recently_viewed, created_at,"
        " last_seen_at, tenant_id)"
        " SELECT gen_random_uuid(), '', 'c' || g || '@bench.example', '', '', '', '', '', '{}',"
        " 'unknown', '', 'unknown', '', 'awareness', '[]', '[]', '[]',"
        " now() - random() * 700 * interval '1 day',"
        " CASE WHEN random() < 0.1 THEN NULL"
        " ELSE now() - (-ln(1 - random()) * 60) * interval '1 day' END, %(tenant)s"
        " FROM generate_series(1, %(n)s) g",
    ),
    (
        "orders",
        "INSERT INTO audience_order (tenant_id, contact_id, message_id, occurred_at, value,"
        " currency, properties)"
        " SELECT %(tenant)s, c.id, 'o-' || c.id || '-' || o,"
        " now() - random() * 700 * interval '1 day', floor(20 + random() * 380), 'EUR',"
        " jsonb_build_object('products', jsonb_build_array(jsonb_build_object("
        " 'sku', x.cat || '-1', 'category', x.cat)))"
        " FROM audience_contact c"
        " CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 6 + c.id * 0)::int) o"
        f" CROSS JOIN LATERAL (SELECT ({CATEGORY_ARRAY})[CASE WHEN random() < 0.7"
        " THEN c.id %% 6 + 1 ELSE 1 + floor(random() * 6 + o * 0)::int END] AS cat) x"
        " WHERE c.tenant_id = %(tenant)s AND random() < 0.33",
    ),
    (
        "views",
        "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
        " occurred_at, received_at, message_id, source)"
        " SELECT %(tenant)s, c.id, 'track', 'Product Viewed',"
        " jsonb_build_object('sku', x.cat || '-1', 'category', x.cat), '{}',"
        " now() - random() * 179 * interval '1 day', now(), 'v-' || c.id || '-' || v, 'bench'"
        " FROM audience_contact c"
        " CROSS JOIN LATERAL generate_series(1, floor(-ln(1 - random()) * 2 + c.id * 0)::int) v"
        f" CROSS JOIN LATERAL (SELECT ({CATEGORY_ARRAY})[CASE WHEN random() < 0.7"
        " THEN c.id %% 6 + 1 ELSE 1 + floor(random() * 6 + v * 0)::int END] AS cat) x"
        " WHERE c.tenant_id = %(tenant)s",
    ),
    (
        "emails",
        "INSERT INTO audience_event (tenant_id, contact_id, type, name, properties, context,"
        " occurred_at, received_at, message_id, source)"
        " SELECT %(tenant)s, m.id, 'track', e.name, '{}', '{}', m.sent_at, now(),"
        " 'm-' || m.id || '-' || m.k || '-' || e.name, 'bench'"
        " FROM (SELECT c.id, k, random() AS opener, random() AS r1, random() AS r2,"
        " now() - random() * 179 * interval '1 day' AS sent_at"
        " FROM audience_contact c"
        " CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 5 + c.id * 0)::int) k"
        " WHERE c.tenant_id = %(tenant)s AND c.id %% 2 = 0) m"
        " CROSS JOIN LATERAL (VALUES ('Email Sent', true), ('Email Opened', m.r1 < m.opener),"
        " ('Email Link Clicked', m.r1 < m.opener AND m.r2 < 0.33)) e(name, happened)"
        " WHERE e.happened",
    ),
]


def make_sql(tenant: Tenant, n: int) -> None:
    from django.db import connection

    from audience.partitions import partitions_ensure

    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(SQL_STEPS[0][1], {"tenant": tenant.pk, "n": n})
    say(f"contacts: {n} in {time.perf_counter() - started:.0f} s")
    first = Contact.objects.filter(tenant=tenant).values_list("pk", flat=True).first()
    Event.objects.create(
        tenant=tenant,
        contact_id=first,
        name="Oldest",
        occurred_at=now - timedelta(days=179),
        message_id="bench-oldest",
    )
    partitions_ensure(now=now)
    for name, sql in SQL_STEPS[1:]:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, {"tenant": tenant.pk})
            rows = cursor.rowcount
        say(f"{name}: {rows} rows in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audience_contact; ANALYZE audience_order; ANALYZE audience_event")


def measure(tenant: Tenant) -> None:
    from threadpoolctl import threadpool_limits

    # scikit-learn's libraries loaded first: threadpoolctl limits only the loaded ones.
    from personalisation.personas import clustering  # noqa: F401

    with threadpool_limits(limits=1):  # as persona_run_execute does
        _measure(tenant)


def _measure(tenant: Tenant) -> None:
    from personalisation.personas import clustering, features, services

    now = timezone.now()
    steps: list[tuple[str, float]] = []
    t = time.perf_counter()
    ids, total = features.contact_ids_sample(
        tenant=tenant, size=services.SAMPLE_MAX, seed=services.SEED
    )
    steps.append(("read ids + draw sample", time.perf_counter() - t))
    t = time.perf_counter()
    behaviours = features.behaviour_read(
        tenant=tenant, contact_ids=ids, now=now, scan=total <= services.SCAN_RATIO * len(ids)
    )
    steps.append((f"behaviour of {len(ids)} contacts", time.perf_counter() - t))
    t = time.perf_counter()
    categories = features.top_categories(behaviours, clustering.TOP_CATEGORIES)
    data = clustering.matrix(behaviours, categories)
    fit = clustering.cluster(data, k=None)
    steps.append((f"k-means, k from 3-6 (chose {fit.k}) + silhouettes", time.perf_counter() - t))
    t = time.perf_counter()
    rule_features = clustering.rule_features(categories)
    rule_data = clustering.rule_matrix(behaviours, rule_features)
    for label in set(fit.labels.tolist()):
        clustering.approximate(rule_data, fit.labels == label, rule_features)
    steps.append(("rule trees of every persona", time.perf_counter() - t))
    say(f"team of {total} contacts, sample {len(ids)}")
    for name, seconds in steps:
        say(f"  {name:<50} {seconds:7.2f} s")
    t = time.perf_counter()
    run = services.persona_run_request(tenant=tenant, user=None)
    run = services.persona_run_execute(tenant=tenant, run=run)
    say(
        f"  whole run (persona_run_execute): {time.perf_counter() - t:.2f} s, {run.status}, "
        f"k={run.k}, silhouette {run.silhouette}"
    )
    for c in run.clusters:
        say(
            f"    ≈{c['size']:>8}  {c['label']}  (rule captures {c['capture']['captured']:.0%}, "
            f"adds ≈{c['capture']['spill']})"
        )
    say(f"  peak memory of this process: {rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sql", action="store_true", help="generate inside PostgreSQL")
    args = parser.parse_args()
    rls.process_default_set(rls.SYSTEM)
    slug = f"bench-personas-{args.contacts}" + ("-sql" if args.sql else "")
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = Tenant.objects.create(name=slug, slug=slug)
        if args.sql:
            make_sql(tenant, args.contacts)
        else:
            make(tenant, args.contacts, args.seed)
    else:
        from personalisation.personas.models import PersonaRun

        PersonaRun.objects.filter(tenant=tenant).delete()
    measure(tenant)


if __name__ == "__main__":
    main()
