"""Rollups: the figures dashboards read, pre-aggregated per team and local day (the team's time
zone), kept exactly in step with the events by `analytics.rollups` inside the transaction that
stores them, and rebuilt from the raw events by `rollups_rebuild` (docs/analytics.md).

Nothing here has a foreign key to a contact: contacts are merged and erased, and what a rollup
counts stays. Rows name a contact by its id only where a distinct count needs it (ActiveDay).
"""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class DailyMetric(models.Model):
    """One metric's value for one local day of a team (analytics/metrics.py defines each)."""

    # No index of its own: every index of this table starts with tenant already.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()  # the team's local date
    metric = models.CharField(max_length=40)
    value = models.DecimalField(max_digits=26, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "metric", "day"], name="dailymetric_tenant_metric_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} on {self.day}: {self.value}"


class Activity(models.TextChoices):
    VISIT = "visit", "Visited"  # did a tracked event (metrics.VISIT says which)
    CART = "cart", "Added to cart"
    BUY = "buy", "Ordered"
    FIRST_ORDER = "first_order", "First order ever"  # one row per contact: its first order's day
    SECOND_ORDER = "second_order", "Second order ever"  # one row per contact, once it has one


class ActiveDay(models.Model):
    """A contact did `activity` on a local day: the rows behind the distinct counts (visitors,
    identified and new visitors, carts, buyers, first orders). `identified` and `new` describe
    visits only (metrics.py says what they mean) and are kept current with the contact."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    activity = models.CharField(max_length=12, choices=Activity.choices)
    contact_id = models.BigIntegerField()  # no foreign key: see the module's docstring
    identified = models.BooleanField(default=False)
    new = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contact_id", "activity", "day"],
                name="activeday_tenant_contact_day",
            ),
        ]
        indexes = [
            # The rebuild replaces a range of days. Not (tenant, activity, day): with the table's
            # statistics stale, the planner took that index for a contact's rows too (the
            # unique one's prefix is tenant, contact, activity), scanning every visit row of the
            # team once per contact.
            models.Index(fields=["tenant", "day"], name="activeday_tenant_day_idx")
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} {self.activity} on {self.day}"


class MessageFirst(models.Model):
    """The local day of a message's first click (metric email_clicked or push_clicked): every
    click is an event, the metrics count each message once, on the day it was first clicked."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    metric = models.CharField(max_length=40)
    delivery_id = models.CharField(max_length=64)  # the delivery's public id
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "metric", "delivery_id"], name="messagefirst_tenant_metric_dlv"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="messagefirst_tenant_day_idx")]

    def __str__(self) -> str:
        return f"{self.metric} {self.delivery_id} on {self.day}"


class StageTransitionDay(models.Model):
    """How many `Lifecycle Stage Changed` events moved contacts from one stage to another on a
    local day ("" as from_stage: a new contact's first stage)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    from_stage = models.CharField(max_length=20, blank=True)
    to_stage = models.CharField(max_length=20)
    contacts = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "from_stage", "to_stage"],
                name="stagemove_tenant_day_move",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '(new)'} → {self.to_stage} on {self.day}: {self.contacts}"


class StageSnapshot(models.Model):
    """How many contacts were in each lifecycle stage at the end of a local day (written by the
    beat task `analytics.tasks.stage_snapshots_take`; the current day's row is rewritten until
    the day ends)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    stage = models.CharField(max_length=20)
    contacts = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "stage"], name="stagesnapshot_tenant_day_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage} on {self.day}: {self.contacts}"


class RollupState(models.Model):
    """Per team: the time zone its rollups' days are in. When the team's zone changes, its
    rollups are rebuilt in the new one (analytics.tasks.rollups_rebuild_timezone)."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    timezone = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups of tenant {self.tenant_id} in {self.timezone}"
