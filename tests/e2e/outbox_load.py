"""A campaign for the fault tests: emails and web pushes of two tenants, decided through the
product's own path (`deliveries_create`, whose commits wake the senders), and what the outbox
says about them afterwards.

Used in-process on the test database, and as a process of its own against a private database
(`python -m tests.e2e.outbox_load seed|report` with DATABASE_URL and CELERY_BROKER_URL set):

    seed --emails N --browsers FILE   FILE: the fake browsers' PushSubscription.toJSON(), a list
    report                            prints {"rows": [...]} (one per delivery) as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TENANTS = ("faults-a", "faults-b")  # two tenants, as every suite has
DECIDE_CHUNK = 250  # a campaign decides in chunks; each commit wakes a sender


def seed(*, emails: int, browsers: list[dict[str, Any]]) -> int:
    """`emails` recipients and one contact per browser, split across two tenants; decides one
    message for each. Returns how many were decided."""
    from audience.models import Contact
    from messaging.models import Channel
    from messaging.push import push_subscription_save
    from messaging.services import (
        Decision,
        deliveries_create,
        sender_identity_update,
        template_save,
    )
    from tenants.services import tenant_create

    decided = 0
    for index, slug in enumerate(TENANTS):
        tenant = tenant_create(name=f"Faults {slug}", slug=slug)
        sender_identity_update(tenant=tenant, sender_email=f"news@{slug}.example", verified=True)
        email_template = template_save(
            tenant=tenant,
            name="Winter sale",
            channel=Channel.EMAIL,
            subject="{{ contact.first_name | default: 'Hello' }}, the winter sale is on",
            html='<p>Hi {{ contact.first_name }},</p><p><a href="https://shop.example/">Shop</a></p>',
        )
        push_template = template_save(
            tenant=tenant,
            name="Winter sale push",
            channel=Channel.PUSH,
            title="{{ contact.first_name | default: 'Hello' }}, the sale is on",
            body="A third off tents and boots.",
            target_url="https://shop.example/sale",
        )
        readers = Contact.objects.bulk_create(
            Contact(tenant=tenant, email=f"r{i:05}@{slug}.example", first_name=f"R{i}")
            for i in range(index, emails, len(TENANTS))
        )
        mine = browsers[index :: len(TENANTS)]
        visitors = Contact.objects.bulk_create(
            Contact(tenant=tenant, first_name=f"V{i}", user_id=f"{slug}-v{i}")
            for i in range(len(mine))
        )
        for contact, browser in zip(visitors, mine, strict=True):
            push_subscription_save(
                tenant=tenant,
                contact=contact,
                endpoint=browser["endpoint"],
                p256dh=browser["keys"]["p256dh"],
                auth=browser["keys"]["auth"],
            )
        # Interleaved, so that both channels' senders have work from the first commit on.
        for start in range(0, max(len(readers), len(visitors)), DECIDE_CHUNK):
            for template, contacts in ((email_template, readers), (push_template, visitors)):
                part = contacts[start : start + DECIDE_CHUNK]
                decided += deliveries_create(
                    tenant=tenant,
                    template=template,
                    source="campaign:winter",
                    decisions=[Decision(c, f"winter:{c.pk}") for c in part],
                )
    return decided


def report() -> dict[str, Any]:
    """Every delivery: its public id, channel, status, reason, attempts and where it goes (the
    email address, or the push endpoint)."""
    from messaging.models import Delivery, PushSubscription

    endpoints = dict(PushSubscription.objects.values_list("contact_id", "endpoint"))
    rows = [
        {
            "id": str(public_id),
            "channel": channel,
            "status": status,
            "reason": reason,
            "attempts": attempts,
            "to": email if channel == "email" else endpoints.get(contact_id, ""),
        }
        for public_id, channel, status, reason, attempts, contact_id, email in (
            Delivery.objects.order_by("pk").values_list(
                "public_id",
                "channel",
                "status",
                "reason",
                "attempts",
                "contact_id",
                "contact__email",
            )
        )
    ]
    return {"rows": rows}


def main() -> None:
    import django

    django.setup()
    from core import rls

    # A script that spans tenants, like a management command (row-level security, core/rls.py).
    rls.process_default_set(rls.SYSTEM)
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--emails", type=int, required=True)
    seeding.add_argument("--browsers", type=Path, required=True)
    commands.add_parser("report")
    args = parser.parse_args()
    if args.command == "seed":
        decided = seed(emails=args.emails, browsers=json.loads(args.browsers.read_text()))
        sys.stdout.write(json.dumps({"decided": decided}) + "\n")
    else:
        sys.stdout.write(json.dumps(report()) + "\n")


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
