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


def measure(tenant: Tenant) -> None:
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
    args = parser.parse_args()
    rls.process_default_set(rls.SYSTEM)
    slug = f"bench-personas-{args.contacts}"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = Tenant.objects.create(name=slug, slug=slug)
        make(tenant, args.contacts, args.seed)
    else:
        from personalisation.personas.models import PersonaRun

        PersonaRun.objects.filter(tenant=tenant).delete()
    measure(tenant)


if __name__ == "__main__":
    main()
