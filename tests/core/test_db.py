"""Raw cursors share Django's transaction; JSON text keeps what Django's encoder would cut."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import connection

from audience.models import Contact
from core.db import json_text, raw_cursor


def test_it_writes_json_with_microseconds_and_decimals_as_text() -> None:
    moment = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
    text = json_text({"at": moment, "price": Decimal("19.90"), "skus": ["a", "b"]})
    assert orjson.loads(text) == {
        "at": "2026-12-07T12:00:00.123456+00:00",
        "price": "19.90",
        "skus": ["a", "b"],
    }


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="raw cursors are PostgreSQL's")
def test_it_sees_the_rows_of_the_current_transaction_with_a_prepared_statement(world) -> None:
    contact = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    with connection.wrap_database_errors, raw_cursor() as cursor:
        for _ in range(2):  # the second run uses the prepared statement
            cursor.execute(
                "SELECT email FROM audience_contact WHERE id = ANY(ARRAY("
                "SELECT jsonb_array_elements_text(%s::jsonb)::bigint))",
                [json_text([contact.pk])],
                prepare=True,
            )
            assert cursor.fetchall() == [("ann@example.com",)]
