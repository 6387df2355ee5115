from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tenants.models import ApiKeyKind, Tenant


class Command(BaseCommand):
    help = (
        "Create an API key for a tenant. The raw key is printed on the last line, only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--kind", required=True, choices=ApiKeyKind.values)
        parser.add_argument("--name", default="", help="where it will be used")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug “{options['tenant']}”.")
        key, raw = services.api_key_create(
            tenant=tenant, kind=options["kind"], name=options["name"]
        )
        self.stdout.write(f"Created {key.kind} key “{key.name}” for {tenant.slug}. Store it now:")
        self.stdout.write(raw)
