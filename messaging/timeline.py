"""Messaging's events on a contact's timeline, in words: which message (its subject or push
title, as it was sent) and what became of it. Registered with audience.registry in ready()."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from audience.models import Event
from messaging import outcomes
from messaging.models import Delivery
from tenants.models import Tenant

WHAT = {
    outcomes.EMAIL_SENT: "sent",
    outcomes.EMAIL_DELIVERED: "delivered",
    outcomes.EMAIL_OPENED: "opened",
    outcomes.EMAIL_CLICKED: "clicked",
    outcomes.EMAIL_BOUNCED: "bounced",
    outcomes.EMAIL_COMPLAINED: "marked as spam",
    outcomes.EMAIL_FAILED: "failed",
    outcomes.PUSH_SENT: "sent",
    outcomes.PUSH_CLICKED: "clicked",
    outcomes.PUSH_FAILED: "failed",
    outcomes.SKIPPED: "not sent",
}


def _title(content: dict[str, Any], fallback: str) -> str:
    """The subject (push: title) as written, unless it is Liquid ("Hello {{ contact… }}" reads
    worse than the template's name); then the template's name."""
    title = content.get("subject") or content.get("title") or ""
    if not title or "{{" in title or "{%" in title:
        title = content.get("name") or fallback
    return f"“{' '.join(str(title).split())}”" if title else "a message"


def summaries(*, tenant: Tenant, events: Sequence[Event]) -> dict[int, str]:
    ours = [e for e in events if e.name in WHAT or e.name == outcomes.UNSUBSCRIBED]
    ids = {str(e.properties.get("delivery_id")) for e in ours if isinstance(e.properties, dict)}
    ids.discard("None")
    contents = (
        dict(
            Delivery.objects.filter(tenant=tenant, public_id__in=ids).values_list(
                "public_id", "content"
            )
        )
        if ids
        else {}
    )
    by_id = {str(k): v for k, v in contents.items()}
    found = {}
    for e in ours:
        p = e.properties if isinstance(e.properties, dict) else {}
        if e.name == outcomes.UNSUBSCRIBED:
            channel = {"email": "email", "push": "web push"}.get(str(p.get("channel")), "messages")
            found[e.pk] = f"Unsubscribed from {channel}"
            continue
        kind = "Push" if str(p.get("channel")) == "push" or e.name.startswith("Push") else "Email"
        content = by_id.get(str(p.get("delivery_id")), {})
        line = f"{kind} {_title(content, str(p.get('template', '')))} {WHAT[e.name]}"
        if p.get("url"):
            parts = urlsplit(str(p["url"]))
            line += f": {parts.netloc}{parts.path}" if parts.netloc else f": {p['url']}"
        if p.get("reason"):
            line += f" ({str(p['reason']).replace('_', ' ')})"
        found[e.pk] = line
    return found
