"""Campaigns: one message to an audience (segments, less exclusion segments), sent now, at a
time, on a recurring schedule, or at each recipient's local time; optionally A/B/n variants
with a winner and a hold-out group that receives nothing.

A Campaign is what the marketer edits. Each time it goes out is an Occurrence (one for a
one-off campaign, one per schedule slot for a recurring one; unique by key, so two beat
processes firing the same slot start it once). Starting an occurrence freezes the audience into
Recipient rows (variant or hold-out, and when each is due); releasing turns due recipients into
outbox rows (messaging's Delivery, idempotency key `campaign:<occurrence>:<contact>`) in
chunks, as fast as the throttle allows, and only while the campaign is sending: pausing stops
the release, resuming carries on from the first recipient not yet released, so no one is sent
twice or skipped.

References between these tables (and to segments, templates and contacts) have no constraint of
Django's: tenants/keys.py gives each a composite (tenant_id, …) foreign key instead (but a
recipient's, which have none at all), and every unique constraint holds the tenant, so the schema
can be distributed by tenant.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from audience.models import Contact
from messaging.models import Category, Channel, Delivery, Template
from segments.models import Segment
from tenants.models import Tenant


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"  # waits for its time (or its next recurrence)
        SENDING = "sending", "Sending"  # an occurrence is releasing messages
        PAUSED = "paused", "Paused"  # releasing stopped; resume carries on
        SENT = "sent", "Sent"  # a one-off campaign whose occurrence finished
        CANCELLED = "cancelled", "Cancelled"

    class Schedule(models.TextChoices):
        NOW = "now", "Send now"
        AT = "at", "At a date and time"
        LOCAL = "local", "At each recipient's local time"
        RECURRING = "recurring", "Recurring"

    class WinnerMetric(models.TextChoices):
        OPENS = "opens", "Opens"
        CLICKS = "clicks", "Clicks"
        CONVERSIONS = "conversions", "Conversions"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.MARKETING)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)

    # When. NOW: on scheduling. AT: send_at. LOCAL: local_date at local_time in each
    # recipient's zone (else the team's). RECURRING: a crontab in the team's zone, held as a
    # django-celery-beat PeriodicTask (`periodic_task`) that the campaign service keeps in step.
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(null=True, blank=True)
    local_date = models.DateField(null=True, blank=True)
    local_time = models.TimeField(null=True, blank=True)
    cron_minute = models.CharField(max_length=64, blank=True)
    cron_hour = models.CharField(max_length=64, blank=True)
    cron_day_of_week = models.CharField(max_length=64, blank=True)
    cron_day_of_month = models.CharField(max_length=64, blank=True)
    cron_month_of_year = models.CharField(max_length=64, blank=True)
    recurring_until = models.DateTimeField(null=True, blank=True)
    # One campaign per task (a unique constraint with the tenant, as every unique key of a
    # tenant's table has; a one-to-one field would be unique on the task alone).
    periodic_task = models.ForeignKey(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # How fast: at most this many messages a minute (None: as fast as the senders go).
    throttle_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # Send-time optimisation: each recipient at the hour they most often open or click (their
    # own history, else the team's), within `sto_window_hours` of the occurrence's start.
    send_time_optimized = models.BooleanField(default=False)
    sto_window_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(168)]
    )

    # A/B/n: with two or more variants, `test_percent` of the audience gets them split by their
    # weights; after `winner_after_hours` the variant best on `winner_metric` goes to the rest.
    # test_percent 100: a plain split, no winner step.
    test_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    winner_metric = models.CharField(
        max_length=12, choices=WinnerMetric.choices, default=WinnerMetric.OPENS
    )
    winner_after_hours = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(168)]
    )
    # A hold-out: this share of the audience receives nothing, so results show the lift.
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(50)]
    )

    # The conversion goal: `goal_event` within `goal_window_hours` of the message (or of the
    # occurrence, for the hold-out); revenue read from the event's `goal_revenue_property`.
    goal_event = models.CharField(max_length=200, blank=True)
    goal_window_hours = models.PositiveSmallIntegerField(
        default=72, validators=[MinValueValidator(1), MaxValueValidator(2160)]
    )
    goal_revenue_property = models.CharField(max_length=100, blank=True, default="revenue")

    paused_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="campaign_tenant_public"),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="campaign_tenant_name",
                violation_error_message="A campaign with this name already exists.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "periodic_task"], name="campaign_tenant_periodic_task"
            ),
        ]
        indexes = [
            # The beat's pick-up: scheduled and sending campaigns of every tenant.
            models.Index(
                fields=["state", "send_at"],
                name="campaign_due_idx",
                condition=Q(state__in=["scheduled", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def editable(self) -> bool:
        return self.state in (self.State.DRAFT, self.State.SCHEDULED)


class CampaignSegment(models.Model):
    """A segment the campaign goes to (`exclude` False) or keeps away from (True)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="segments", db_constraint=False
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    exclude = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "campaign", "segment"], name="campaign_segment_tenant_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{'not ' if self.exclude else ''}{self.segment_id}"


class Variant(models.Model):
    """One version of the message: its template and its share of the test group. A campaign
    has at least one (key "A")."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="variants", db_constraint=False
    )
    key = models.CharField(max_length=1)  # "A", "B", "C"…
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    weight = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "campaign", "key"], name="variant_tenant_campaign_key"
            ),
        ]

    def __str__(self) -> str:
        return f"Variant {self.key}"


class Occurrence(models.Model):
    """One sending of a campaign. `key` is "once" for a one-off campaign, the slot's UTC time
    (ISO, to the minute) for a recurring one: unique per campaign, so a slot runs once."""

    class State(models.TextChoices):
        SENDING = "sending", "Sending"  # recipients frozen; releasing them as they come due
        TESTING = "testing", "Testing"  # the test group is out; the rest wait for the winner
        SENT = "sent", "Sent"  # every recipient released
        CANCELLED = "cancelled", "Cancelled"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="occurrences", db_constraint=False
    )
    key = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=State.choices, default=State.SENDING)
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)  # frozen, hold-out included
    holdout_count = models.PositiveIntegerField(default=0)
    winner = models.ForeignKey(
        Variant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    winner_due_at = models.DateTimeField(null=True, blank=True)
    # Its results as the results page and the API show them (campaigns/results.py), kept once
    # they are final (the goal window after the finish has passed) or before retention removes
    # the events they are counted from, whichever comes first; read instead of counting again.
    results = models.JSONField(null=True, blank=True, editable=False)
    results_frozen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "campaign", "key"], name="occurrence_tenant_campaign_key"
            ),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="occurrence_tenant_public"
            ),
        ]
        indexes = [
            # The tick's look for finished occurrences whose results are not kept yet.
            models.Index(
                fields=["finished_at"],
                name="occurrence_unfrozen_idx",
                condition=Q(results_frozen_at__isnull=True, finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.key}"


class Recipient(models.Model):
    """A contact frozen into an occurrence's audience: its variant (None while it waits for
    the winner, and for the hold-out), when it is due, and its outbox row once released.

    Written only in bulk, by the dispatch's INSERT … SELECT and UPDATE … FROM, which take the
    tenant, occurrence, variant and delivery from the rows they have just read or written. So
    those references have no database constraint: PostgreSQL checks a foreign key row by row
    (a FOR KEY SHARE of the same parent a million times), which cost more than the insert
    itself — 9 s of every 100,000 recipients frozen (bench/campaign.py). Deletes still cascade
    through the ORM. The contact's too: a contact erased while its recipient row was being
    frozen can leave the row behind, so the release reads recipients joined to their contacts
    (the outbox row's own constraint on the contact stays). tenants/keys.py leaves all four
    out of its composite constraints too (`UNCONSTRAINED`)."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    # (No index of their own: the unique (tenant, occurrence, contact) serves the occurrence's
    # lookups, which name the tenant, and every index costs each of a million inserts and
    # release updates.)
    occurrence = models.ForeignKey(
        Occurrence, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    variant = models.ForeignKey(
        Variant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    holdout = models.BooleanField(default=False)
    due_at = models.DateTimeField()
    released = models.BooleanField(default=False)
    delivery = models.ForeignKey(
        Delivery,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "occurrence", "contact"],
                name="recipient_tenant_occurrence_contact",
            ),
        ]
        indexes = [
            # The release queue: due recipients not yet released, per occurrence.
            models.Index(
                fields=["occurrence", "due_at"],
                name="recipient_release_idx",
                condition=Q(released=False, holdout=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.occurrence_id}"
