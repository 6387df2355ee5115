"""Segments: a named rule tree over contacts, and its materialised membership."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.timezone import now

from audience.models import Contact
from tenants.models import Tenant


class Segment(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # A validated tree (segments.rules.validate); never saved without passing it.
    rules = models.JSONField()
    # Whether the clock alone can change membership (rolling windows, birthdays): such segments
    # are also refreshed on a schedule.
    time_relative = models.BooleanField(default=False)
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="segment_tenant_public_id"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="segment_tenant_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """A contact currently in a segment, since `entered_at`. Leaving deletes the row (and
    records a `Segment Exited` event on the contact). Not `tenants.Membership`, a user's role in
    a team."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Both checked by composite (tenant_id, …) constraints (tenants/keys.py), not Django's.
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="memberships", db_constraint=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    entered_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "segment member"
        verbose_name_plural = "segment members"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "segment", "contact"],
                name="segment_membership_tenant_segment_contact",
            ),
        ]
        indexes = [
            # Index names are capped at 30 characters, hence no "tenant" in it.
            models.Index(fields=["tenant", "contact"], name="segment_membership_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"
