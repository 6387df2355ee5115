from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants import services


class Command(BaseCommand):
    help = "Create a tenant, optionally with an owner (created without a password if new)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email")
        parser.add_argument("--timezone", default="UTC")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        email = options["owner_email"]
        try:
            if email:
                owner = get_user_model().objects.filter(email__iexact=email).first()
                if owner is None:
                    # No password: the owner sets one through "Forgot your password?".
                    owner = get_user_model().objects.create_user(email=email, password=None)
            tenant = services.tenant_create(
                name=options["name"],
                slug=options["slug"],
                owner=owner,
                timezone_name=options["timezone"],
            )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from None
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}), id {tenant.public_id}")
        if owner is not None:
            self.stdout.write(f"Owner: {owner.email}")


def _describe(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)
