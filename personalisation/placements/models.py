"""Onsite placements: a named slot of the shop's pages (`home-banner`) and its variants, each
targeted by segment and/or lifecycle stage, in priority order.

For a visitor the first active targeted variant (by `position`) whose targets all hold is served;
when none does, the placement's default: its first active variant without a target. Every
field a visitor's browser receives is plain text or an http(s) URL: the tracker writes them into
the page with textContent and attributes, never as HTML.
"""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.timezone import now

from audience.models import LifecycleStage
from segments.models import Segment
from tenants.models import Tenant

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# The tracker's events (docs/personalisation/placements.md): what the list's figures count.
VIEWED = "Placement Viewed"
CLICKED = "Placement Clicked"


def key_validate(value: str) -> None:
    if not KEY_RE.match(value or ""):
        raise ValidationError(
            "Use 1 to 64 lowercase letters, digits, - or _, starting with a letter or digit "
            "(e.g. home-banner).",
            code="invalid",
        )


def url_validate(value: str) -> None:
    """An absolute http(s) URL or a path of the shop's own site: never `javascript:` or `data:`,
    which a browser would run or render."""
    if not value:
        return
    if value.startswith("/") and not value.startswith("//"):
        return
    if re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE) and not re.search(r"\s", value):
        return
    raise ValidationError(
        "Enter an https:// (or http://) address, or a path of your site starting with /.",
        code="invalid",
    )


class Placement(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # What the shop's page names: <div data-wayfarer-placement="home-banner">.
    key = models.CharField(max_length=64, validators=[key_validate])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="placement_tenant_public_id"
            ),
            models.UniqueConstraint(fields=["tenant", "key"], name="placement_tenant_key"),
        ]

    def __str__(self) -> str:
        return self.key


class PlacementVariant(models.Model):
    """What a placement shows to the visitors its targets select (not campaigns' `Variant`, an
    A/B version of a message)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Both checked by composite (tenant_id, …) constraints (tenants/keys.py), not Django's.
    placement = models.ForeignKey(
        Placement,
        on_delete=models.CASCADE,
        related_name="variants",
        db_constraint=False,
        db_index=False,
    )
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, max_length=1000)
    image_url = models.CharField(
        "image URL", max_length=2000, blank=True, validators=[url_validate]
    )
    link_url = models.CharField("link URL", max_length=2000, blank=True, validators=[url_validate])
    link_text = models.CharField(max_length=80, blank=True)
    # Targets: both must hold when both are set. Neither: a default (served when no targeted
    # variant matches). A segment that a variant targets cannot be deleted (apps.py).
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        null=True,
        blank=True,
    )
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, blank=True)
    position = models.PositiveIntegerField(default=0)  # priority: lower first
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="placement_variant_tenant_public"
            ),
            models.UniqueConstraint(
                fields=["tenant", "placement", "name"], name="placement_variant_tenant_name"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "placement", "position"], name="placement_variant_order_idx"
            ),
            models.Index(fields=["tenant", "segment"], name="placement_variant_segment_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def targeted(self) -> bool:
        return self.segment_id is not None or bool(self.lifecycle_stage)

    def target_label(self) -> str:
        """The targets in words: "Segment “VIPs” and stage Onboarding", or "Everyone else"."""
        parts = []
        if self.segment_id is not None:
            parts.append(f"segment “{self.segment.name}”")  # type: ignore[union-attr]
        if self.lifecycle_stage:
            parts.append(f"stage {LifecycleStage(self.lifecycle_stage).label}")
        if not parts:
            return "Everyone else (default)"
        text = " and ".join(parts)
        return text[0].upper() + text[1:]
