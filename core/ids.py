"""Public ids that arrive from outside (URLs, query strings, API bodies) parsed one way.

Objects are addressed by UUIDs; a malformed one must read as "no such object" (a 404), never as
a server error or a database error about the column's type.
"""

from __future__ import annotations

import uuid

from django.http import Http404


def parse_uuid(value: object) -> uuid.UUID | None:
    """`value` as a UUID (a UUID or any spelling `uuid.UUID` accepts), or None."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def uuid_or_404(value: object, *, what: str) -> uuid.UUID:
    """`value` as a UUID, or Http404 "No such `what`": a malformed id is as missing as an
    unknown one."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise Http404(f"No such {what}")
    return parsed
