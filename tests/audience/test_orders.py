"""The order ledger (audience/orders.py): every "Order Completed" event stored becomes one Order,
through the tracking API and `events_record` alike, with the value rule segments use; it
outlives the raw events; 0013 fills it from the events stored before; a GDPR erase leaves
nothing of the contact in it (nor in the events or their dedupe keys); row-level security
keeps it per tenant."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audience.inbox import inbox_drain
from audience.models import Contact, Event, EventKey, Order
from audience.orders import ORDER_EVENT, order_currency, order_value, value_sql
from audience.segment_spec import parse_call
from audience.services import Fact, calls_record, contact_erase, events_record
from core import rls
from tenants import services as tenant_services
from tests.factories import basic

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row-level security and SQL are PostgreSQL's"
)


@pytest.fixture
def send(client: Any, world: Any) -> Any:
    """POST to the tracking API with acme's write key, as an SDK does, and let the ingest worker
    record it."""
    key = tenant_services.api_key_create(tenant=world.acme, kind="write", name="site")[1]

    def _send(path: str, body: object) -> Any:
        response = client.post(
            f"/v1/{path}",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(key),
        )
        assert response.status_code == 200, response.content
        inbox_drain()
        return response

    return _send


def order_call(message_id: str, user_id: str = "ann", **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": ORDER_EVENT,
        "userId": user_id,
        "messageId": message_id,
        "timestamp": "2026-03-10T10:00:00Z",
        "properties": properties,
    }


def record(tenant: Any, *messages: dict[str, Any]) -> None:
    calls_record(tenant=tenant, calls=[parse_call(m) for m in messages])


def retention(tenant: Any) -> None:
    """What retention does to old events: the events and their dedupe keys go."""
    EventKey.objects.filter(tenant=tenant).delete()
    Event.objects.filter(tenant=tenant).delete()


# --- recording --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_records_an_order_sent_to_the_tracking_api(send: Any, world: Any) -> None:
    products = [{"sku": "TENT-2", "price": 199.5, "quantity": 1}]
    send("track", order_call("o-1", total=199.5, currency="eur", products=products))
    send("track", {**order_call("v-1"), "event": "Product Viewed"})  # not an order

    order = Order.objects.get()
    event = Event.objects.get(message_id="o-1")
    assert (order.tenant_id, order.contact_id, order.message_id, order.occurred_at) == (
        world.acme.pk,
        event.contact_id,
        "o-1",
        datetime(2026, 3, 10, 10, tzinfo=UTC),
    )
    assert (order.value, order.currency) == (Decimal("199.5"), "EUR")
    assert order.properties == event.properties  # recommendations read its products
    assert Contact.objects.get(pk=order.contact_id).user_id == "ann"


@pytest.mark.django_db
def test_it_records_each_order_of_a_batch_once_however_often_it_is_sent(
    send: Any, world: Any
) -> None:
    batch = {"batch": [order_call("o-1", total=10), order_call("o-2", user_id="bob", total=20)]}
    send("batch", batch)
    send("batch", batch)  # an SDK retrying
    send("track", order_call("o-1", total=10))

    assert sorted(Order.objects.values_list("message_id", "value")) == [
        ("o-1", Decimal(10)),
        ("o-2", Decimal(20)),
    ]


@pytest.mark.django_db
def test_it_records_orders_that_wayfarer_records_itself(world: Any) -> None:
    """`events_record` (facts: demo shops, tests, integrations) writes orders like ingestion."""
    ann = Contact.objects.create(tenant=world.acme, user_id="ann")
    fact = Fact(
        ann.pk, ORDER_EVENT, "order-7", "shop", {"revenue": 42}, datetime(2026, 1, 2, tzinfo=UTC)
    )
    events_record(tenant=world.acme, facts=[fact, fact])
    events_record(tenant=world.acme, facts=[fact])  # a replay

    order = Order.objects.get()
    assert (order.contact_id, order.value, order.message_id) == (ann.pk, 42, fact.message_id)


@pytest.mark.django_db
def test_it_keeps_one_order_when_an_old_message_comes_back_after_retention(world: Any) -> None:
    record(world.acme, order_call("o-1", total=10))
    retention(world.acme)

    # Its dedupe key went with the event, so the event is stored again; the order is not.
    record(world.acme, order_call("o-1", total=10))
    assert Event.objects.filter(message_id="o-1").count() == 1
    assert list(Order.objects.values_list("message_id", "value")) == [("o-1", Decimal(10))]


@pytest.mark.django_db
def test_it_keeps_each_tenants_orders_apart(world: Any) -> None:
    record(world.acme, order_call("same-id", total=10))
    record(world.globex, order_call("same-id", total=5000))

    assert Order.objects.get(tenant=world.acme).value == 10
    assert Order.objects.get(tenant=world.globex).value == 5000


@pytest.mark.django_db
def test_it_records_the_order_in_the_events_transaction(world: Any) -> None:
    """Stored with its event or not at all (the inbox worker records many requests in one
    transaction, and rolls a failing chunk back)."""
    with pytest.raises(RuntimeError), transaction.atomic():
        record(world.acme, order_call("o-1", total=10))
        assert Order.objects.filter(message_id="o-1").exists()
        raise RuntimeError("the chunk failed")
    assert not Order.objects.exists() and not Event.objects.exists()


# --- the value rule ---------------------------------------------------------------------------

VALUE_CASES = [
    ("total", {"total": 100, "revenue": 5}, Decimal(100)),
    ("revenue when no total", {"revenue": 50}, Decimal(50)),
    ("value last", {"value": 30}, Decimal(30)),
    ("text is no number", {"total": "n/a", "value": 30}, Decimal(30)),
    ("a number in text is no number", {"total": "100", "revenue": 7}, Decimal(7)),
    ("true is no number", {"total": True, "revenue": 7}, Decimal(7)),
    ("null is no number", {"total": None, "revenue": 7}, Decimal(7)),
    ("an object is no number", {"total": {"amount": 3}}, None),
    ("a list is no number", {"total": [3]}, None),
    ("none at all", {"coupon": "FREE"}, None),
    ("zero is a number", {"total": 0, "revenue": 7}, Decimal(0)),
    ("negative (a refund)", {"total": -12.5}, Decimal("-12.5")),
    ("a fraction as sent", {"total": 19.99}, Decimal("19.99")),
    ("rounded to 6 places", {"total": 0.1234565}, Decimal("0.123457")),
    ("halves away from zero", {"total": -0.0000025}, Decimal("-0.000003")),
    ("nearly the largest", {"total": 9999999999999.98}, Decimal("9999999999999.98")),
    ("too large: the next key", {"total": 1e13, "revenue": 8}, Decimal(8)),
    ("far too large", {"total": 1e300}, None),
    ("integers", {"total": 2**63 - 1, "value": 10**13 - 1}, Decimal(10**13 - 1)),
]


@pytest.mark.parametrize(
    ("properties", "expected"),
    [(p, e) for _, p, e in VALUE_CASES],
    ids=[name for name, _, _ in VALUE_CASES],
)
def test_it_takes_the_first_of_total_revenue_value_that_is_a_number(
    properties: dict[str, Any], expected: Decimal | None
) -> None:
    assert order_value(properties) == expected


def test_it_has_no_value_for_what_is_not_a_number() -> None:
    assert order_value({"total": float("nan"), "revenue": float("inf"), "value": 2}) == 2
    assert order_value([1, 2]) is None  # type: ignore[arg-type]


def test_it_reads_a_currency_code_only() -> None:
    assert [
        order_currency(p)
        for p in (
            {"currency": "usd"},
            {"currency": "EURO"},
            {"currency": 978},
            {},
            {"currency": "€€€"},
        )
    ] == ["USD", "", "", "", ""]


SQL_ONLY_CASES = [
    # Beyond what a float holds: rounds up to 10^13, too large, the next key (a float is 1e13).
    '{"total": 9999999999999.9999999, "revenue": 1}',
    '{"total": 1e-7, "revenue": 1}',  # rounds to 0, a number all the same
]


@postgresql_only
@pytest.mark.django_db
@pytest.mark.parametrize(
    "document",
    [json.dumps(p) for _, p, _ in VALUE_CASES] + SQL_ONLY_CASES,
    ids=[name for name, _, _ in VALUE_CASES] + ["rounds up to too large", "rounds to zero"],
)
def test_it_computes_the_same_value_in_sql(document: str) -> None:
    """The backfill computes values in SQL: the same rule, the same answers."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {value_sql('p')} FROM (SELECT %s::jsonb AS p) AS v", [document])
        (value,) = cursor.fetchone()
    assert value == order_value(json.loads(document))


@pytest.mark.django_db
def test_it_stores_the_value_as_the_rule_says(world: Any) -> None:
    record(
        world.acme,
        *(order_call(f"o-{n}", **properties) for n, (_, properties, _) in enumerate(VALUE_CASES)),
    )
    stored = dict(Order.objects.values_list("message_id", "value"))
    assert stored == {f"o-{n}": expected for n, (_, _, expected) in enumerate(VALUE_CASES)}


# --- identity merges --------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_moves_a_visitors_orders_to_the_customer_they_identify_as(world: Any) -> None:
    record(world.acme, {"type": "identify", "userId": "ann", "messageId": "i-1"})
    anonymous = {**order_call("o-1", total=10), "anonymousId": "browser-1"}
    del anonymous["userId"]
    record(world.acme, anonymous)
    record(
        world.acme,
        {"type": "identify", "userId": "ann", "anonymousId": "browser-1", "messageId": "i-2"},
    )

    ann = Contact.objects.get(tenant=world.acme, user_id="ann")
    assert list(Order.objects.values_list("contact_id", flat=True)) == [ann.pk]


# --- GDPR erase -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_erases_a_contacts_orders_events_and_keys_and_nothing_else(world: Any) -> None:
    for who in ("ann", "bob"):
        record(
            world.acme,
            order_call(f"{who}-o1", user_id=who, total=10),
            order_call(f"{who}-o2", user_id=who, total=20),
            {"type": "track", "event": "Product Viewed", "userId": who, "messageId": f"{who}-v"},
        )
    record(world.globex, order_call("ann-o1", total=10))  # another tenant's Ann, same ids
    ann = Contact.objects.get(tenant=world.acme, user_id="ann")
    kept = {
        model: sorted(
            model.objects.exclude(tenant=world.acme, contact_id=ann.pk).values_list(
                "message_id", flat=True
            )
        )
        for model in (Order, Event)
    }

    deleted = contact_erase(tenant=world.acme, contact=ann)

    assert (deleted["order"], deleted["event"], deleted["eventkey"]) == (2, 3, 3)
    assert not Order.objects.filter(tenant=world.acme, message_id__startswith="ann").exists()
    assert not Event.objects.filter(tenant=world.acme, message_id__startswith="ann").exists()
    assert not EventKey.objects.filter(tenant=world.acme, message_id__startswith="ann").exists()
    for model, message_ids in kept.items():
        assert sorted(model.objects.values_list("message_id", flat=True)) == message_ids
    assert sorted(EventKey.objects.values_list("tenant_id", "message_id")) == sorted(
        [(world.acme.pk, m) for m in ("bob-o1", "bob-o2", "bob-v")] + [(world.globex.pk, "ann-o1")]
    )
    # Nothing of Ann blocks her messages any more: sent again, they are a new contact's.
    record(world.acme, order_call("ann-o1", total=10))
    assert Order.objects.filter(tenant=world.acme, message_id="ann-o1").count() == 1


# --- tenancy ----------------------------------------------------------------------------------


@postgresql_only
@pytest.mark.django_db
def test_it_shows_a_tenant_only_its_own_orders_under_row_level_security(world: Any) -> None:
    record(world.acme, order_call("a-1", total=10))
    record(world.globex, order_call("g-1", total=10), order_call("g-2", total=10))
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False,)  # else the policy would not apply

    with rls.scope(rls.Scope(tenant_id=world.acme.pk)):
        assert list(Order.objects.values_list("message_id", flat=True)) == ["a-1"]
    with rls.scope(rls.NONE):
        assert not Order.objects.exists()
    assert Order.objects.count() == 3


# --- the backfill (0013) ----------------------------------------------------------------------

BEFORE = [("audience", "0012_event_partitions")]
AFTER = [("audience", "0013_order_backfill")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to `targets`; the apps (historical models) of that state."""
    MigrationExecutor(connection).migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def schema_restored(transactional_db: None) -> Iterator[None]:
    try:
        yield
    finally:  # whatever happened, the other tests get the current schema back
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2, so the keyset walks several (ties on occurred_at included)."""
    backfill = importlib.import_module("audience.migrations.0013_order_backfill")
    monkeypatch.setattr(backfill, "BATCH", 2)


def test_it_fills_the_ledger_from_the_orders_stored_before(
    schema_restored: None, small_batches: None, world: Any
) -> None:
    apps = migrate(BEFORE)
    OldEvent, OldOrder = apps.get_model("audience", "Event"), apps.get_model("audience", "Order")
    OldKey = apps.get_model("audience", "EventKey")
    ann = Contact.objects.create(tenant=world.acme, user_id="ann")
    gus = Contact.objects.create(tenant=world.globex, user_id="gus")
    start = datetime(2024, 1, 31, 23, tzinfo=UTC)
    stored = []

    def event(
        contact: Contact, message_id: str, name: str, when: datetime, **properties: Any
    ) -> None:
        OldEvent.objects.create(
            tenant_id=contact.tenant_id,
            contact_id=contact.pk,
            name=name,
            properties=properties,
            occurred_at=when,
            message_id=message_id,
        )
        OldKey.objects.create(tenant_id=contact.tenant_id, message_id=message_id, occurred_at=when)
        stored.append(message_id)

    # Five of ann's at one moment (batches of 2 must not lose the ties), others over two years.
    for n in range(5):
        event(ann, f"tie-{n}", ORDER_EVENT, start, total=n)
    event(ann, "old", ORDER_EVENT, start - timedelta(days=400), revenue=19.99, currency="usd")
    event(ann, "text", ORDER_EVENT, start + timedelta(days=300), total="n/a", value=30)
    event(ann, "none", ORDER_EVENT, start + timedelta(days=301), coupon="FREE")
    event(ann, "viewed", "Product Viewed", start, total=500)
    event(gus, "g-1", ORDER_EVENT, start, total=5000)
    # One already in the ledger (the new code ran before the backfill): kept as it is.
    OldOrder.objects.create(
        tenant_id=ann.tenant_id, contact_id=ann.pk, message_id="old", occurred_at=start, value=1
    )

    migrate(AFTER)
    orders = {
        o.message_id: (o.tenant_id, o.contact_id, o.value, o.currency, o.occurred_at)
        for o in Order.objects.all()
    }
    assert orders == {
        **{f"tie-{n}": (world.acme.pk, ann.pk, Decimal(n), "", start) for n in range(5)},
        "old": (world.acme.pk, ann.pk, Decimal(1), "", start),
        "text": (world.acme.pk, ann.pk, Decimal(30), "", start + timedelta(days=300)),
        "none": (world.acme.pk, ann.pk, None, "", start + timedelta(days=301)),
        "g-1": (world.globex.pk, gus.pk, Decimal(5000), "", start),
    }
    assert Order.objects.get(message_id="text").properties == {"total": "n/a", "value": 30}
    assert sorted(Event.objects.values_list("message_id", flat=True)) == sorted(stored)

    # Backwards it does nothing; forwards again it adds nothing.
    migrate(BEFORE)
    assert Order.objects.count() == 9
    Order.objects.filter(message_id="old").delete()
    migrate(AFTER)
    assert Order.objects.count() == 9
    old = Order.objects.get(message_id="old")
    assert (old.value, old.currency) == (Decimal("19.99"), "USD")
