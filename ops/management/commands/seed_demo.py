from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ops.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant and its demo user. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = seed_demo()
        self.stdout.write(
            f"Demo tenant “{tenant.name}” at /t/{tenant.slug}/ — sign in as "
            f"{DEMO_EMAIL} / {DEMO_PASSWORD}"
        )
