"""Every analytics table as a CSV download (ISSUE15 decision 8): one helper for the dashboards,
the journey map, funnels and campaign results, so they all name, quote and defuse files alike.

    return csv_response(
        what="traffic", tenant=request.tenant, start=period.start, end=period.end,
        headers=["Day", "Visitors"], rows=[(day, visitors), ...],
    )

answers `traffic-acme-2026-11-01-2026-11-30.csv` as an attachment.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from django.utils.text import slugify

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "|")


def csv_cell(value: Any) -> str | int | float | Decimal:
    """One cell: numbers as they are (a negative change is a number, not a formula), dates as
    ISO 8601, None as empty, and any text that a spreadsheet would run as a formula prefixed
    with an apostrophe so it is shown as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_filename(*, what: str, tenant: Any, start: date | None, end: date | None) -> str:
    """`<what>-<team slug>-<start>-<end>.csv`; the dates are left out when a table has none."""
    parts = [slugify(what) or "export", tenant.slug]
    if start is not None:
        parts.append(start.isoformat())
    if end is not None:
        parts.append(end.isoformat())
    return "-".join(parts) + ".csv"


def csv_response(
    *,
    what: str,
    tenant: Any,
    start: date | None,
    end: date | None,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> HttpResponse:
    """A CSV attachment of `headers` and `rows` (UTF-8 with a byte-order mark, which Excel needs
    to read anything beyond ASCII; every other reader ignores it)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = csv_filename(what=what, tenant=tenant, start=start, end=end)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([csv_cell(h) for h in headers])
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return response
