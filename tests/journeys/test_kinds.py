"""Each node kind's execute (and validation), one enrollment at a time."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

import pytest

from audience.models import Contact, Event
from journeys import node_kinds, webhooks
from journeys.kinds.branches import split_port
from journeys.models import Enrollment, JourneyVersion, Node
from journeys.node_kinds import Fail, Finish, Follow, NodeSettingsError, StepContext, Wait
from messaging.models import Delivery

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def run(world: Any, kind: str, settings: dict[str, Any], contact: Any = None, **kw: Any) -> Any:
    """Execute one node for a fresh enrollment (saved, so actions have its pk)."""
    from tests.journeys.conftest import journey_build

    contact = contact or Contact.objects.create(tenant=world.acme, email="k@x.io")
    journey = journey_build(
        world.acme, {"t": ("trigger_api", {}), "n": (kind, settings)}, "t.next>n"
    )
    version = JourneyVersion.objects.get(journey=journey)
    enrollment = Enrollment.objects.create(
        tenant=world.acme,
        journey=journey,
        version=version,
        contact=contact,
        node_key="n",
        arrived_at=kw.pop("arrived_at", T0),
        entered_at=T0,
        context=kw.pop("context", {}),
        wait_match=kw.pop("wait_match", {}),
    )
    step = StepContext(
        tenant=world.acme,
        enrollment=enrollment,
        contact=contact,
        node=Node.objects.get(version=version, key="n"),
        now=kw.pop("now", T0),
        **kw,
    )
    return node_kinds.get(kind).execute(step)


def test_a_trigger_passes_on(world: Any) -> None:
    assert run(world, "trigger_api", {}) == Follow("next")


def test_a_delay_counts_from_arrival(world: Any) -> None:
    s = {"amount": 2, "unit": "hours"}
    assert run(world, "wait_delay", s) == Wait(
        T0 + timedelta(hours=2), detail={"until": (T0 + timedelta(hours=2)).isoformat()}
    )
    assert run(world, "wait_delay", s, now=T0 + timedelta(hours=2)) == Follow("next")


def test_a_window_uses_the_contacts_zone_else_the_tenants(world: Any) -> None:
    s = {"days": ["0"], "start": "09:00", "end": "10:00"}  # Mondays 09:00 to 10:00
    world.acme.timezone = "Europe/Berlin"
    world.acme.save()
    tenant_zone = run(
        world, "wait_window", s, now=T0 - timedelta(hours=4), arrived_at=T0 - timedelta(hours=4)
    )
    assert isinstance(tenant_zone, Wait)
    assert tenant_zone.until == datetime(2026, 5, 4, 7, 0, tzinfo=UTC)  # 09:00 CEST
    ny = Contact.objects.create(tenant=world.acme, timezone="America/New_York")
    outcome = run(world, "wait_window", s, contact=ny, now=T0)
    assert isinstance(outcome, Wait)
    assert outcome.until == datetime(2026, 5, 4, 13, 0, tzinfo=UTC)  # 09:00 EDT


def test_an_event_wait_is_keyed_and_times_out(world: Any) -> None:
    s = {"event": "Order Completed", "amount": 1, "unit": "days", "match": "product"}
    context = {"event": {"name": "Product Viewed", "properties": {"sku": "S-1"}}}
    waiting = run(world, "wait_event", s, context=context)
    assert isinstance(waiting, Wait)
    assert (waiting.event, waiting.match) == ("Order Completed", {"product_id": "S-1"})
    woken = {"name": "Order Completed", "properties": {"product_id": "S-1"}}
    assert (
        run(world, "wait_event", s, context=context, wait_match=waiting.match, woken_by=woken).port
        == "event"
    )
    other = {"name": "Order Completed", "properties": {"product_id": "S-2"}}
    assert isinstance(
        run(world, "wait_event", s, context=context, wait_match=waiting.match, woken_by=other),
        Wait,
    )
    assert run(world, "wait_event", s, now=T0 + timedelta(days=1)) == Follow("timeout")


def test_a_condition_branch_asks_the_segments_registry(world: Any) -> None:
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {"type": "attribute", "field": "first_name", "operator": "equals", "value": "Ann"}
        ],
    }
    kind = node_kinds.get("branch_condition")
    clean = kind.validate({"rules": rules})
    ann = Contact.objects.create(tenant=world.acme, first_name="Ann")
    assert run(world, "branch_condition", clean, contact=ann).port == "yes"
    bob = Contact.objects.create(tenant=world.acme, first_name="Bob")
    assert run(world, "branch_condition", clean, contact=bob).port == "no"
    with pytest.raises(NodeSettingsError):
        kind.validate({"rules": {"type": "group", "match": "all", "children": []}})


def test_an_event_branch_looks_since_entry_with_filters(world: Any) -> None:
    ann = Contact.objects.create(tenant=world.acme)
    s = {
        "event": "Order Completed",
        "since": "entered",
        "filters": [{"property": "total", "operator": "gte", "value": 50}],
    }
    assert run(world, "branch_event", s, contact=ann, now=T0 + timedelta(hours=1)).port == "no"
    for total, at in ((80, T0 - timedelta(days=1)), (20, T0 + timedelta(minutes=5))):
        Event.objects.create(
            tenant=world.acme,
            contact=ann,
            name="Order Completed",
            properties={"total": total},
            occurred_at=at,
            message_id=f"m{total}",
        )
    assert run(world, "branch_event", s, contact=ann, now=T0 + timedelta(hours=1)).port == "no"
    s["since"], s["days"] = "days", 7
    assert run(world, "branch_event", s, contact=ann, now=T0 + timedelta(hours=1)).port == "yes"


def test_a_split_is_deterministic_and_follows_the_percentages() -> None:
    ports = [split_port(f"e{i}:n", [20, 30, 50]) for i in range(3000)]
    assert split_port("x:n", [20, 30, 50]) == split_port("x:n", [20, 30, 50])
    shares = {p: ports.count(p) / 3000 for p in "abc"}
    assert abs(shares["a"] - 0.2) < 0.03 and abs(shares["c"] - 0.5) < 0.03
    kind = node_kinds.get("branch_split")
    assert kind.ports({"percentages": [20, 30, 50]}) == ["a", "b", "c"]
    for bad in ([100], [50, 40], [50, 50.0], [10] * 10):
        with pytest.raises(NodeSettingsError):
            kind.validate({"percentages": bad})


def test_an_email_action_decides_one_message_and_a_dry_run_none(
    world: Any, email: Any, contact: Any
) -> None:
    s = {"template": str(email.public_id), "category": "marketing"}
    context = {"event": {"name": "Product Added", "properties": {"cart_id": "c9"}}}
    dry = run(world, "action_email", s, contact=contact, context=context, dry_run=True)
    assert dry == Follow("next", detail={"would_send": "Your cart", "channel": "email"})
    assert not Delivery.objects.exists()
    assert run(world, "action_email", s, contact=contact, context=context).port == "next"
    delivery = Delivery.objects.get()
    assert delivery.data == {"cart_id": "c9"}
    assert delivery.event == context["event"]
    push = {"template": str(email.public_id)}  # an email template is no push template
    assert isinstance(run(world, "action_push", push, contact=contact), Fail)


def test_profile_actions_go_through_audience(world: Any, contact: Any) -> None:
    kind = node_kinds.get("action_update")
    with pytest.raises(NodeSettingsError):
        kind.validate({"field": "password", "value": "x"})
    with pytest.raises(NodeSettingsError):  # computed from behaviour (audience/stages.py)
        kind.validate({"field": "lifecycle_stage", "value": "advocacy"})
    run(world, "action_update", {"field": "attributes.plan", "value": "gold"}, contact=contact)
    run(world, "action_update", {"field": "locale", "value": "pt-BR"}, contact=contact)
    s = {"attribute": "tags", "operation": "add", "value": "vip"}
    run(world, "action_list", s, contact=contact)
    run(world, "action_list", s, contact=contact)
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "gold", "tags": ["vip"]}
    assert contact.locale == "pt-BR"
    run(world, "action_list", {**s, "operation": "remove"}, contact=contact)
    contact.refresh_from_db()
    assert contact.attributes["tags"] == []
    dry = run(world, "action_list", s, contact=contact, dry_run=True)
    assert dry.detail == {"would_add": {"tags": "vip"}}


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers), body))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(settings: Any) -> Iterator[tuple[str, type[_Receiver]]]:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
    _Receiver.answers, _Receiver.seen = [], []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver
    server.shutdown()


def test_a_webhook_is_signed_and_idempotent(world: Any, contact: Any, receiver: Any) -> None:
    url, handler = receiver
    outcome = run(world, "action_webhook", {"url": url, "payload": {"a": 1}}, contact=contact)
    assert outcome == Follow("next", detail={"posted": url, "status": 200})
    headers, body = handler.seen[0]
    stamp, v1 = (part.split("=", 1)[1] for part in headers["X-Wayfarer-Signature"].split(","))
    secret = webhooks.webhook_secret(tenant=world.acme)
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert v1 == expected.hexdigest()
    assert headers["Idempotency-Key"].startswith("journey:")
    assert json.loads(body)["payload"] == {"a": 1}


def test_a_webhook_retries_server_errors_and_stops_on_client_errors(
    world: Any, contact: Any, receiver: Any
) -> None:
    url, handler = receiver
    handler.answers = [503, 400]
    retry = run(world, "action_webhook", {"url": url}, contact=contact)
    assert isinstance(retry, Fail) and retry.retry_at == T0 + timedelta(seconds=30)
    final = run(world, "action_webhook", {"url": url}, contact=contact)
    assert isinstance(final, Fail) and final.retry_at is None and "400" in final.reason


def test_a_webhook_refuses_private_addresses(world: Any, contact: Any, settings: Any) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    outcome = run(world, "action_webhook", {"url": "https://127.0.0.1/x"}, contact=contact)
    assert isinstance(outcome, Fail) and outcome.retry_at is None
    with pytest.raises(NodeSettingsError):
        node_kinds.get("action_webhook").validate({"url": "http://10.0.0.1/x"})


def test_goal_and_exit(world: Any) -> None:
    s = {"event": "Order Completed", "amount": 2, "unit": "days", "revenue_property": "total"}
    waiting = run(world, "goal", s)
    assert isinstance(waiting, Wait) and waiting.until == T0 + timedelta(days=2)
    woken = {
        "name": "Order Completed",
        "properties": {"total": 12.5},
        "occurred_at": T0.isoformat(),
    }
    assert run(world, "goal", s, woken_by=woken) == Finish("converted", detail={"revenue": "12.50"})
    assert run(world, "goal", s, now=T0 + timedelta(days=2)) == Follow("timeout")
    assert run(world, "exit", {}) == Finish("completed")


class _Trickler(BaseHTTPRequestHandler):
    """Answers a header line every 0.2 s, for ever: each read is quick, the answer never ends."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(300):
                self.wfile.write(b"X-Slow: 1\r\n")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the caller hung up

    def log_message(self, *args: Any) -> None:
        pass


def test_a_webhook_that_trickles_its_answer_is_cut_at_the_deadline(
    settings: Any, monkeypatch: Any
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
    monkeypatch.setattr(webhooks, "DEADLINE", 1.0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        answer = webhooks.post(f"http://127.0.0.1:{server.server_port}/hook", b"{}", {})
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert answer.status == 0 and answer.error  # no answer: retried later, with backoff
    assert elapsed < 5, elapsed  # each read was well within TIMEOUT (10 s)
