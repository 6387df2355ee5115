"""The condition kind registry (segments/registry.py): a kind registered from outside segments
is validated, described, compiled, evaluated, offered by the builder and shown in the API schema
without any other module knowing it; and the per-contact evaluation of the kinds the property
test does not generate (segment membership, RFM) answers as the compiled query does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Q
from drf_spectacular.generators import SchemaGenerator

from audience.models import Contact, Event
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import registry, rules, services
from segments.compiler import segment_contacts
from segments.models import Segment
from segments.registry import ConditionKind, Context, FormFields, RuleError, require

pytestmark = pytest.mark.django_db

BUILDER = "/t/acme/segments/builder/"
NEW = "/t/acme/segments/new/"


class HasPhone(ConditionKind):
    """{"type": "has_phone", "has": true}: the whole of a kind, for the tests."""

    name = "has_phone"
    label = "Has a phone number"
    order = 55  # after "Can receive"
    template = "test_kinds/phone.html"
    schema = {"type": "object", "properties": {"has": {"type": "boolean"}}}
    example = {"type": "has_phone", "has": True}

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        has = raw.get("has", True)
        require(isinstance(has, bool), "has must be true or false.", path)
        return {"type": "has_phone", "has": has}

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        return "has a phone number" if node["has"] else "has no phone number"

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        q = ~Q(phone="")
        return q if node["has"] else ~q

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        return (contact.phone != "") == node["has"]

    def new(self) -> dict[str, Any]:
        return {"type": "has_phone", "has": True}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        return {"type": "has_phone", "has": fields.text("has") != "no"}

    def form_values(self, node: dict[str, Any]) -> dict[str, Any]:
        return {"has": "yes" if node.get("has", True) else "no"}

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        return {"phone_answers": [("yes", "has a phone"), ("no", "has no phone")]}


@pytest.fixture
def has_phone(settings: Any) -> Iterator[None]:
    templates = settings.TEMPLATES[0]
    settings.TEMPLATES = [
        {**templates, "DIRS": [*templates["DIRS"], Path(__file__).parent / "templates"]}
    ]
    registry.register(HasPhone)
    yield
    registry.unregister("has_phone")


def send(tenant: Any, *messages: dict[str, Any]) -> None:
    calls_record(tenant=tenant, calls=[parse_call(m) for m in messages])


def person(tenant: Any, user_id: str, **traits: Any) -> Contact:
    send(tenant, {"type": "identify", "userId": user_id, "messageId": user_id, "traits": traits})
    return Contact.objects.get(tenant=tenant, user_id=user_id)


def group(*children: dict[str, Any], match: str = "all", negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def test_it_lists_segments_kinds_and_messagings_in_builder_order() -> None:
    assert registry.names() == [
        "attribute",
        "event",
        "event_time",
        "metric",
        "reachable",
        "lifecycle",
        "segment",
        "rfm",
    ]
    assert type(registry.get("reachable")).__module__ == "messaging.segment_conditions"
    with pytest.raises(KeyError):
        registry.get("weather")


def test_it_refuses_a_second_kind_under_a_taken_name() -> None:
    class Impostor(HasPhone):
        name = "event"

    with pytest.raises(ValueError, match="registered already"):
        registry.register(Impostor)
    assert type(registry.get("event")).__name__ == "EventCondition"


def test_it_validates_and_describes_a_kind_registered_from_outside(has_phone: None) -> None:
    tree = rules.validate(group({"type": "has_phone"}, {"type": "has_phone", "has": False}))
    assert tree["children"] == [
        {"type": "has_phone", "has": True},
        {"type": "has_phone", "has": False},
    ]
    assert rules.describe(tree) == "all of: has a phone number; has no phone number"
    with pytest.raises(RuleError, match=r"^Condition 1: has must be true or false\.$"):
        rules.validate(group({"type": "has_phone", "has": "yes"}))
    with pytest.raises(RuleError, match=r"use one of attribute, .*, reachable, has_phone, "):
        rules.validate(group({"type": "weather"}))


def test_it_compiles_and_evaluates_a_kind_registered_from_outside(world, has_phone) -> None:
    ann = person(world.acme, "ann", phone="+49 30 1234")
    ben = person(world.acme, "ben")
    person(world.globex, "zed", phone="+1 555 0100")
    tree = rules.validate(group({"type": "has_phone"}, {"type": "has_phone"}, match="any"))
    assert set(segment_contacts(tenant=world.acme, rules=tree)) == {ann}
    assert registry.contact_matches(tenant=world.acme, rules=tree, contact=ann)
    assert not registry.contact_matches(tenant=world.acme, rules=tree, contact=ben)
    with pytest.raises(ValueError, match="not the tenant's"):
        registry.contact_matches(tenant=world.globex, rules=tree, contact=ann)


def test_it_offers_and_renders_a_kind_registered_from_outside(login, world, has_phone) -> None:
    client = login(world.dave)
    page = client.get(NEW).content.decode()
    assert '<option value="has_phone">Has a phone number</option>' in page
    person(world.acme, "ann", phone="+49 30 1234")
    person(world.acme, "ben")

    added = client.post(BUILDER, {"node--type": "group", "action": "add::has_phone"})
    html = added.content.decode()
    assert '<input type="hidden" name="node-0-type" value="has_phone">' in html
    assert '<option value="yes" selected>has a phone</option>' in html
    assert "has a phone number" in html  # the summary

    changed = client.post(BUILDER, {"node-0-type": "has_phone", "node-0-has": "no"})
    assert '<option value="no" selected>has no phone</option>' in changed.content.decode()
    saved = client.post(
        NEW, {"name": "No phone", "node-0-type": "has_phone", "node-0-has": "no", "action": "save"}
    )
    assert saved.status_code == 302
    segment = Segment.objects.get(tenant=world.acme, name="No phone")
    assert segment.rules["children"] == [{"type": "has_phone", "has": False}]
    members = segment.memberships.values_list("contact__user_id", flat=True)
    assert list(members) == ["ben"]


def test_it_takes_and_documents_a_kind_registered_from_outside_in_the_api(
    api, world, has_phone
) -> None:
    person(world.acme, "ann", phone="+49 30 1234")
    body = {"name": "Callable", "rules": group({"type": "has_phone"})}
    created = api("post", "segments/", body)
    assert created.status_code == 201, created.content
    assert created.json()["summary"] == "has a phone number"
    assert created.json()["member_count"] == 1

    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"]["SegmentInputRequest"]["properties"]["rules"]
    assert "has_phone" in field["description"]
    assert field["x-condition-kinds"]["has_phone"]["example"] == HasPhone.example
    assert set(field["x-condition-kinds"]) == set(registry.names())


# --- evaluation of the kinds the property test does not generate ---------------------------------


NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_it_evaluates_membership_and_rfm_as_the_compiled_query_selects(world) -> None:
    tenant = world.acme
    for n in range(12):  # eleven customers with 0-10 orders of growing value, and one without
        person(tenant, f"c{n}", email=f"c{n}@example.com")
        send(
            tenant,
            *(
                {
                    "type": "track",
                    "userId": f"c{n}",
                    "event": "Order Completed",
                    "messageId": f"c{n}-{k}",
                    "properties": {"total": 10 * (n + k)},
                    "timestamp": (NOW - timedelta(days=40 * n + k)).isoformat(),
                }
                for k in range(n if n < 11 else 0)
            ),
        )
    buyers = services.segment_create(
        tenant=tenant,
        name="Buyers",
        rules=group(
            {
                "type": "event",
                "event": "Order Completed",
                "count": {"operator": "at_least", "value": 3},
            }
        ),
    )
    trees = [
        group({"type": "segment", "segment": str(buyers.public_id)}),
        group({"type": "segment", "segment": str(buyers.public_id), "member": False}),
        group({"type": "rfm", "recency": [4, 5]}),
        group({"type": "rfm", "frequency": [1, 2], "monetary": [1, 5]}, negate=True),
        group(
            {"type": "rfm", "monetary": [3, 4, 5]},
            {"type": "segment", "segment": str(buyers.public_id), "member": False},
            match="any",
        ),
    ]
    contacts = list(Contact.objects.filter(tenant=tenant))
    assert Event.objects.filter(tenant=tenant, name="Order Completed").exists()
    for raw in trees:
        tree = rules.validate(raw)
        compiled = set(segment_contacts(tenant=tenant, rules=tree, now=NOW))
        assert 0 < len(compiled) < len(contacts), rules.describe(tree)
        evaluated = {
            c
            for c in contacts
            if registry.contact_matches(tenant=tenant, rules=tree, contact=c, now=NOW)
        }
        assert evaluated == compiled, rules.describe(tree)
