"""Reads for the audience: contact search."""

from __future__ import annotations

import pytest
from django.db import connection

from audience import selectors
from audience.models import Contact


def contacts(world) -> None:  # type: ignore[no-untyped-def]
    Contact.objects.create(tenant=world.acme, email="ann@example.com", first_name="Zoe")
    Contact.objects.create(tenant=world.acme, first_name="Annika", last_name="Berg")
    Contact.objects.create(tenant=world.acme, first_name="Max", last_name="Annan")
    Contact.objects.create(tenant=world.acme, user_id="ann", email="x@example.com")
    Contact.objects.create(tenant=world.acme, email="joanna@example.com", first_name="Joanna")
    Contact.objects.create(tenant=world.globex, email="ann@globex.example", first_name="Ann")


def test_it_searches_prefixes_of_email_and_names_case_insensitively_and_user_ids_exactly(
    world,
) -> None:
    contacts(world)

    found = selectors.contact_list(tenant=world.acme, search=" ann ")

    assert sorted(str(c.email or c.first_name) for c in found) == [
        "Annika",
        "Max",
        "ann@example.com",
        "x@example.com",
    ]
    assert [c.first_name for c in selectors.contact_list(tenant=world.acme, search="aNNi")] == [
        "Annika"
    ]
    assert not selectors.contact_list(tenant=world.acme, search="an").filter(user_id="ann")


def test_it_answers_contact_search_from_the_prefix_indexes_on_postgresql(world) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("operator-class indexes and EXPLAIN output are PostgreSQL's")
    contacts(world)
    Contact.objects.bulk_create(
        Contact(tenant=world.acme, email=f"{i}@example.com", first_name="Pat", last_name=f"P{i}")
        for i in range(2000)
    )
    # Switching sequential scans off keeps the plan about which indexes *can* serve the search
    # rather than what is cheapest on a small table; the tenant's foreign-key index could serve
    # it too, so the assertion names the search indexes.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audience_contact")
        cursor.execute("SET LOCAL enable_seqscan = off")

    plan = selectors.contact_list(tenant=world.acme, search="ann").explain()

    assert "Seq Scan" not in plan
    for index in (
        "contact_tenant_email_pfx_idx",
        "contact_tenant_first_pfx_idx",
        "contact_tenant_last_pfx_idx",
    ):
        assert f"Bitmap Index Scan on {index}" in plan, plan
