"""RFM groups: recency / frequency / monetary quintiles of a tenant's customers.

Ten acme customers, A to J, with distinct values on each measure, so NTILE(5) puts exactly two
in each fifth and the expected quintiles can be read off the table below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audience.models import Contact, Event
from audience.services import Fact, events_record
from segments import presets, rules, services
from segments.compiler import segment_contacts
from segments.rules import RuleError

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

#          last order (days ago), orders, spent
CUSTOMERS = {
    "A": (1, 10, 950),
    "B": (2, 1, 900),
    "C": (3, 9, 50),
    "D": (5, 2, 700),
    "E": (8, 6, 300),
    "F": (13, 3, 1000),
    "G": (21, 7, 100),
    "H": (89, 4, 800),
    "I": (55, 8, 200),
    "J": (34, 5, 400),
}
# Read off the table: 5 = the best fifth (most recent, most orders, most spent).
RECENCY = {"A": 5, "B": 5, "C": 4, "D": 4, "E": 3, "F": 3, "G": 2, "J": 2, "I": 1, "H": 1}
FREQUENCY = {"B": 1, "D": 1, "F": 2, "H": 2, "J": 3, "E": 3, "G": 4, "I": 4, "C": 5, "A": 5}
MONETARY = {"C": 1, "G": 1, "I": 2, "E": 2, "J": 3, "D": 3, "H": 4, "B": 4, "A": 5, "F": 5}


def order(tenant: Any, contact: Contact, n: int, when: datetime, properties: dict) -> None:
    # Recorded as ingestion records it: the order metrics read the order ledger it keeps.
    events_record(
        tenant=tenant,
        facts=[
            Fact(
                contact.pk,
                "Order Completed",
                key=f"{contact.user_id}-{n}",
                source="test",
                properties=properties,
                occurred_at=when,
            )
        ],
    )


@pytest.fixture
def shop(world) -> dict[str, Contact]:  # type: ignore[no-untyped-def]
    contacts = {}
    for name, (days_ago, orders, spent) in CUSTOMERS.items():
        contact = Contact.objects.create(tenant=world.acme, user_id=name)
        contacts[name] = contact
        last = NOW - timedelta(days=days_ago)
        # The whole amount on the oldest order, under one of the keys orders use; the other
        # orders carry no number (a stray string counts as nothing, not as an error).
        key = {"A": "revenue", "F": "value"}.get(name, "total")
        for n in range(orders):  # one a day, back from the last
            properties = {key: spent} if n == orders - 1 else {"total": "n/a"}
            order(world.acme, contact, n, last - timedelta(days=n), properties)
    # Someone who never ordered, and a big globex customer who must not shift acme's fifths.
    contacts["Z"] = Contact.objects.create(tenant=world.acme, user_id="Z")
    Event.objects.create(
        tenant=world.acme,
        contact=contacts["Z"],
        name="Product Viewed",
        occurred_at=NOW,
        message_id="z-view",
    )
    whale = Contact.objects.create(tenant=world.globex, user_id="A")
    for n in range(20):
        order(world.globex, whale, n, NOW - timedelta(hours=n), {"total": 10_000})
    return contacts


def tree(*children: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return rules.validate(
        {"type": "group", "match": "all", "negate": negate, "children": list(children)}
    )


def rfm(**quintiles: list[int]) -> dict[str, Any]:
    return {"type": "rfm", **quintiles}


def matching(tenant: Any, rule_tree: dict[str, Any], scope: list[int] | None = None) -> set[str]:
    contacts = segment_contacts(tenant=tenant, rules=rule_tree, scope=scope, now=NOW)
    return set(contacts.values_list("user_id", flat=True))


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [("recency", RECENCY), ("frequency", FREQUENCY), ("monetary", MONETARY)],
)
@pytest.mark.parametrize("quintile", [1, 2, 3, 4, 5])
def test_it_ranks_customers_into_hand_computed_quintiles(
    world, shop, dimension, expected, quintile
) -> None:
    members = matching(world.acme, tree(rfm(**{dimension: [quintile]})))
    assert members == {name for name, q in expected.items() if q == quintile}


def test_it_combines_the_three_dimensions(world, shop) -> None:
    champions = tree(rfm(recency=[5], frequency=[4, 5], monetary=[4, 5]))
    assert matching(world.acme, champions) == {"A"}
    at_risk = tree(rfm(recency=[1, 2], frequency=[3, 4, 5]))
    assert matching(world.acme, at_risk) == {"G", "I", "J"}
    assert matching(world.acme, tree(rfm(recency=[1], frequency=[1, 2]))) == {"H"}


def test_it_puts_contacts_without_orders_in_no_quintile(world, shop) -> None:
    everyone = tree(rfm(recency=[1, 2, 3, 4, 5]))
    assert matching(world.acme, everyone) == set(CUSTOMERS)
    assert matching(world.acme, tree(rfm(recency=[1, 2, 3, 4, 5]), negate=True)) == {"Z"}


@pytest.mark.parametrize(
    "condition",
    [
        rfm(recency=[5]),
        rfm(frequency=[1, 2]),
        rfm(monetary=[4, 5]),
        rfm(recency=[1, 2], frequency=[3, 4, 5]),
    ],
)
def test_it_gives_the_same_answer_whatever_the_scope(world, shop, condition) -> None:
    rule_tree = tree(condition)
    everyone = matching(world.acme, rule_tree)
    for name, contact in shop.items():
        assert matching(world.acme, rule_tree, scope=[contact.pk]) == everyone & {name}
    some = [shop[name].pk for name in ("A", "C", "H", "Z")]
    assert matching(world.acme, rule_tree, scope=some) == everyone & {"A", "C", "H", "Z"}
    assert matching(world.acme, rule_tree, scope=[]) == set()


def test_it_refreshes_a_contact_alone_without_changing_its_group(world, shop) -> None:
    segment = services.segment_create(
        tenant=world.acme, name="Best spenders", rules=tree(rfm(monetary=[5]))
    )
    assert segment.time_relative
    assert segment.member_count == 2
    for contact in shop.values():
        change = services.segment_membership_refresh(segment=segment, scope=[contact.pk])
        assert (change.entered, change.exited) == ([], [])


def test_it_splits_ties_by_contact_the_same_way_every_time(world) -> None:
    # Five customers with one order of 10 each: NTILE(5) must still make five fifths, and
    # does so by contact id (the first created is in the bottom fifth).
    contacts = [Contact.objects.create(tenant=world.acme, user_id=f"t{n}") for n in range(5)]
    for contact in contacts:
        order(world.acme, contact, 0, NOW, {"total": 10})
    for quintile, contact in enumerate(contacts, start=1):
        rule_tree = tree(rfm(frequency=[quintile], monetary=[quintile]))
        assert matching(world.acme, rule_tree) == {contact.user_id}
        assert matching(world.acme, rule_tree, scope=[contact.pk]) == {contact.user_id}


def test_it_adds_the_rfm_presets(world, shop) -> None:
    added = {
        key: presets.preset_add(tenant=world.acme, key=key)
        for key in ("rfm-champions", "rfm-at-risk", "rfm-hibernating")
    }
    assert [s.name for s in added.values()] == ["Champions", "At risk", "Hibernating"]
    # Added "now": recency ranks the same whatever the date, so the members are as above.
    assert [s.member_count for s in added.values()] == [1, 3, 1]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (rfm(), "Condition 1: choose quintiles for recency, frequency or monetary."),
        (rfm(recency=[]), "Condition 1: recency must list quintiles from 1 to 5."),
        (rfm(frequency=[0, 1]), "Condition 1: frequency must list quintiles from 1 to 5."),
        (rfm(monetary=[6]), "Condition 1: monetary must list quintiles from 1 to 5."),
        (rfm(monetary=5), "Condition 1: monetary must list quintiles from 1 to 5."),
        (rfm(recency=[True]), "Condition 1: recency must list quintiles from 1 to 5."),
        (rfm(recency=["5"]), "Condition 1: recency must list quintiles from 1 to 5."),
    ],
)
def test_it_refuses_bad_rfm_conditions_naming_them(condition, message) -> None:
    with pytest.raises(RuleError) as error:
        tree(condition)
    assert str(error.value) == message


def test_it_normalises_and_describes_rfm_conditions() -> None:
    normalised = tree(rfm(recency=[5, 4, 4], monetary=[1, 3, 5]))
    assert normalised["children"] == [
        {"type": "rfm", "recency": [4, 5], "frequency": None, "monetary": [1, 3, 5]}
    ]
    assert rules.describe(normalised) == "RFM recency 4-5, monetary 1, 3, 5"
    assert rules.is_time_relative(normalised)
