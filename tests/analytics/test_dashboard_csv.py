"""analytics/csv_export.py, the CSV download of every analytics table (the dashboards' and the
journey map's): named for what, the team and the period; an attachment; spreadsheet formulas
defused; numbers left numbers."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from analytics.csv_export import csv_cell, csv_filename, csv_response

TEAM = SimpleNamespace(slug="acme")


def test_it_answers_an_attachment_named_for_the_table_the_team_and_the_period() -> None:
    response = csv_response(
        what="Journey map",
        tenant=TEAM,
        start=date(2026, 11, 1),
        end=date(2026, 11, 30),
        headers=["Stage", "Contacts"],
        rows=[("Awareness", 1200), ("Retention risk", 0)],
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="journey-map-acme-2026-11-01-2026-11-30.csv"'
    )
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads UTF-8 only with the mark
    assert list(csv.reader(io.StringIO(body.lstrip("\ufeff")))) == [
        ["Stage", "Contacts"],
        ["Awareness", "1200"],
        ["Retention risk", "0"],
    ]


def test_a_table_without_a_period_is_named_without_dates() -> None:
    assert csv_filename(what="campaigns", tenant=TEAM, start=None, end=None) == (
        "campaigns-acme.csv"
    )


def test_text_a_spreadsheet_would_run_is_shown_as_text() -> None:
    for formula in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(formula) == "'" + formula
    assert csv_cell("Win-back") == "Win-back"  # a dash inside is harmless
    # Numbers stay numbers, negative ones too: only text is ever prefixed.
    assert csv_cell(-3) == -3
    assert csv_cell(Decimal("-1.50")) == Decimal("-1.50")
    assert csv_cell(None) == ""
    assert csv_cell(date(2026, 12, 7)) == "2026-12-07"


def test_a_campaign_named_like_a_formula_is_defused_in_the_file() -> None:
    response = csv_response(
        what="campaigns",
        tenant=TEAM,
        start=None,
        end=None,
        headers=["Campaign", "Revenue"],
        rows=[("=cmd|' /C calc'!A0", Decimal("-12.50"))],
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "-12.50"]
