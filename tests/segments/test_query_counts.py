"""Segment membership refreshes are set-based (segments/services.py): one statement finds who
entered and who left, whatever their number, and their `Segment Entered` / `Segment Exited`
events are inserted together. What grows with the work is the number of segments, never of contacts.

Statements are counted with tests/statements.py (it also sees those sent on psycopg cursors
directly). Events are inserted with one INSERT … RETURNING whatever their number (COPY is
refused under row-level security). The pins are per database; a change that adds a statement
to every refresh updates them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audience.models import Contact
from segments import services
from segments.models import Segment, SegmentMembership
from tests.statements import assert_same_statements, statements_by_size

pytestmark = pytest.mark.django_db

SIZES = (1, 20, 50)  # contacts whose membership changes


def attribute_is(key: str, value: str) -> dict[str, Any]:
    return {
        "type": "group",
        "match": "all",
        "children": [
            {
                "type": "attribute",
                "field": f"attributes.{key}",
                "operator": "equals",
                "value": value,
            }
        ],
    }


def contacts(tenant: Any, n: int, **attributes: str) -> list[int]:
    created = Contact.objects.bulk_create(
        Contact(tenant=tenant, attributes=attributes) for _ in range(n)
    )
    return [c.pk for c in created]


def test_it_refreshes_a_whole_segment_with_the_same_statements_however_many_change(
    world: Any,
) -> None:
    def entries_and_exits(n: int) -> Callable[[], None]:
        leaving = contacts(world.acme, n, cohort=f"c{n}")
        segment = services.segment_create(
            tenant=world.acme, name=f"Cohort {n}", rules=attribute_is("cohort", f"c{n}")
        )
        Contact.objects.filter(pk__in=leaving).update(attributes={"cohort": "moved on"})
        contacts(world.acme, n, cohort=f"c{n}")

        def step() -> None:
            change = services.segment_membership_refresh(segment=segment)
            assert (len(change.entered), len(change.exited)) == (n, n)

        return step

    found = statements_by_size(entries_and_exits, SIZES)

    # +1 on SQLite since issue 17: recording events inserts their keys (EventKey) separately.
    assert_same_statements(found, pinned={"postgresql": 9, "sqlite": 9}, fewer_up_to=1)


@pytest.fixture
def vip_segments(world: Any) -> list[Segment]:
    """Three segments of acme; the third includes the second, so it follows its changes."""
    plan = services.segment_create(
        tenant=world.acme, name="Pro plan", rules=attribute_is("plan", "pro")
    )
    vip = services.segment_create(tenant=world.acme, name="VIP", rules=attribute_is("tier", "vip"))
    vip_members = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "segment": str(vip.public_id), "member": True}],
    }
    followers = services.segment_create(tenant=world.acme, name="VIP too", rules=vip_members)
    return [plan, vip, followers]


def test_it_refreshes_contacts_after_their_events_with_the_same_statements_however_many(
    world: Any, vip_segments: list[Segment]
) -> None:
    def new_vips(n: int) -> Callable[[], None]:
        ids = contacts(world.acme, n, tier="vip")

        def step() -> None:
            changed = services.segment_memberships_refresh_contacts(
                tenant=world.acme, contact_ids=ids
            )
            assert changed == 2 * n  # VIP, and the segment that includes VIP

        return step

    found = statements_by_size(new_vips, SIZES)

    assert SegmentMembership.objects.filter(segment__in=vip_segments[1:]).count() == 2 * sum(SIZES)
    # +2 on SQLite since issue 17: both recordings insert their keys (EventKey) separately.
    assert_same_statements(found, pinned={"postgresql": 21, "sqlite": 21}, fewer_up_to=1)


def test_it_checks_contacts_that_change_nothing_with_the_same_statements_however_many(
    world: Any, vip_segments: list[Segment]
) -> None:
    def unchanged(n: int) -> Callable[[], None]:
        ids = contacts(world.acme, n, tier="regular")

        def step() -> None:
            assert (
                services.segment_memberships_refresh_contacts(tenant=world.acme, contact_ids=ids)
                == 0
            )

        return step

    found = statements_by_size(unchanged, SIZES)

    assert_same_statements(found, pinned={"postgresql": 6, "sqlite": 4})
