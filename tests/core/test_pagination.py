"""Keyset pages: every row once, newest first, whatever ties and whatever the cursor says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audience.models import Contact
from core.pagination import NewestFirstPagination, keyset_page

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture
def contacts(world) -> list[Contact]:  # type: ignore[no-untyped-def]
    # Three share one instant: the pk breaks the tie, so none is skipped or shown twice.
    moments = [NOON, NOON, NOON, NOON - timedelta(hours=1), NOON + timedelta(hours=1)]
    return [
        Contact.objects.create(tenant=world.acme, email=f"c{n}@example.com", created_at=when)
        for n, when in enumerate(moments)
    ]


def test_it_walks_every_row_once_newest_first_breaking_ties_by_pk(contacts, world) -> None:
    qs = Contact.objects.filter(tenant=world.acme)
    seen, cursor = [], None
    while True:
        page = keyset_page(qs, field="created_at", cursor=cursor, size=2)
        seen += page.rows
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(contacts, key=lambda c: (c.created_at, c.pk), reverse=True)
    assert [c.pk for c in seen] == [c.pk for c in expected]


def test_it_gives_no_next_cursor_when_the_page_holds_the_last_row(contacts, world) -> None:
    page = keyset_page(
        Contact.objects.filter(tenant=world.acme), field="created_at", cursor=None, size=5
    )
    assert len(page.rows) == 5
    assert page.next_cursor is None


@pytest.mark.parametrize("cursor", ["garbage", "", "bm90IGEgY3Vyc29y", "MjAyNnwx"])
def test_it_shows_the_first_page_for_a_mangled_cursor(contacts, world, cursor: str) -> None:
    qs = Contact.objects.filter(tenant=world.acme)
    first = keyset_page(qs, field="created_at", cursor=None, size=2)
    assert keyset_page(qs, field="created_at", cursor=cursor, size=2).rows == first.rows


def test_it_costs_one_query_a_page(contacts, world, django_assert_num_queries) -> None:
    qs = Contact.objects.filter(tenant=world.acme)
    cursor = keyset_page(qs, field="created_at", cursor=None, size=2).next_cursor
    with django_assert_num_queries(1):
        keyset_page(qs, field="created_at", cursor=cursor, size=2)


def test_it_pages_api_lists_newest_first_with_a_limit(api, contacts) -> None:
    emails, path = [], "contacts/?limit=2"
    while path:
        page = api("get", path).json()
        assert len(page["results"]) <= 2
        emails += [c["email"] for c in page["results"]]
        path = page["next"].split("/api/v1/", 1)[1] if page["next"] else ""
    assert len(emails) == len(set(emails)) == 5
    assert (emails[0], emails[-1]) == ("c4@example.com", "c3@example.com")


def test_it_caps_the_api_page_size_instead_of_refusing_a_large_limit() -> None:
    assert NewestFirstPagination.max_page_size == 500
    assert NewestFirstPagination.page_size_query_param == "limit"
