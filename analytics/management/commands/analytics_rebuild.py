"""`manage.py analytics_rebuild [--tenant SLUG] [--since YYYY-MM-DD]`: recompute the rollups
from the raw events (analytics.rebuild.rollups_rebuild), for an install that had events before
analytics existed, after a bulk load (the benchmark's), or to check them."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.rebuild import rollups_rebuild
from core import rls
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Rebuild the analytics rollups from the raw events, the order ledger and the contacts,"
        " from --since (default and earliest: the first day retention keeps) to the latest day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="one team (default: every team)")
        parser.add_argument(
            "--since", metavar="DATE", type=date.fromisoformat, help="first local day, YYYY-MM-DD"
        )

    def handle(self, *args: Any, tenant: str | None, since: date | None, **options: Any) -> None:
        with rls.system_scope():
            teams = Tenant.objects.order_by("pk")
            if tenant:
                teams = teams.filter(slug=tenant)
                if not teams.exists():
                    raise CommandError(f"no team with the slug {tenant!r}")
            for team in teams:
                began = time.perf_counter()
                report = rollups_rebuild(tenant=team, start=since)
                for note in report.notes:
                    self.stderr.write(f"{team.slug}: {note}")
                span = f"{report.start} to {report.end or 'the latest day'}"
                self.stdout.write(
                    f"{team.slug}: rebuilt {span} ({report.timezone}):"
                    f" {report.metric_rows} daily figures in {time.perf_counter() - began:.1f} s"
                )
