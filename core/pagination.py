"""Keyset ("seek") pagination: pages stay as fast on page 10,000 as on page 1, because each page
starts from the last row of the previous one instead of an OFFSET.

`keyset_page` serves the HTML lists; `NewestFirstPagination` is the REST API's (DRF's cursor
pagination, the same idea with DRF's cursor format).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None


def _encode(when: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int] | None:
    try:
        when, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None  # a mangled cursor shows the first page rather than an error


def keyset_page(qs: QuerySet[Any], *, field: str, cursor: str | None, size: int) -> Page:
    """Rows of `qs` newest first by (`field`, pk), starting after `cursor`."""
    qs = qs.order_by(f"-{field}", "-pk")
    position = _decode(cursor) if cursor else None
    if position is not None:
        when, pk = position
        qs = qs.filter(Q(**{f"{field}__lt": when}) | Q(**{field: when, "pk__lt": pk}))
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if rows and more else None
    return Page(rows=rows, next_cursor=_encode(getattr(last, field), last.pk) if last else None)


class NewestFirstPagination(CursorPagination):
    """The REST API's lists: cursor pages stay fast at any depth (no OFFSET) and stable while rows
    arrive. Subclass it to order by another column (`ordering`). A list view names it as its
    `pagination_class`, which is also how the OpenAPI schema knows the list is paginated."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = "-created_at"
    page_size_query_description = f"Rows per page, at most {max_page_size} (default {page_size})."
    cursor_query_description = "Where the page starts: copied from a `next` or `previous` link."

    def decode_cursor(self, request: Request) -> Cursor | None:
        # DRF answers a mangled cursor with 404, as if the list did not exist: it is a bad
        # parameter, so 400 naming it, like every other invalid field.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {
                    self.cursor_query_param: [
                        "Not a cursor: copy it from a `next` or `previous` link."
                    ]
                }
            ) from None

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "description": "A page of the list: follow `next` until it is null.",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "The following page, or null on the last."},
                "previous": {**link, "description": "The page before, or null on the first."},
                "results": schema,
            },
        }
