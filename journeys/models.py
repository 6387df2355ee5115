"""Journeys: a Journey has versions; a version is a graph of nodes joined by edges between named
ports; an Enrollment is one contact travelling one version; Steps are its log.

References between these tables (and to contacts) have no constraint of Django's: tenants/keys.py
gives each a composite (tenant_id, …) foreign key instead, so one team's row can never point at
another team's (and the schema can be distributed by tenant).

A node's `key` is stable across versions (a copy of a version keeps its keys), so publishing a
change can move people waiting at "the same" node to the new version. Edges refer to nodes by
key, which makes copying a version a plain row copy.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from audience.models import Contact, CoveringIndex
from tenants.models import Tenant


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"  # never published
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"  # enrollments held where they are; no one enters
        ARCHIVED = "archived", "Archived"  # stopped for good; its enrollments exited

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    # The ready-made journey it was made from ("cart_abandonment"), for the admin's lists.
    preset = models.CharField(max_length=60, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="journey_tenant_public"),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="journey_tenant_name",
                violation_error_message="A journey with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Reentry(models.TextChoices):
    NEVER = "never", "Never"
    AFTER = "after", "After some days"
    ALWAYS = "always", "Always"


class JourneyVersion(models.Model):
    """One version of a journey's graph and settings. A journey has at most one draft (being
    edited) and at most one published version (the one people enter); publishing freezes the
    draft, and the next edit starts a new draft copied from it."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"  # replaced; its enrollments may still be finishing

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="versions", db_constraint=False
    )
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    # Journey settings travel with the graph, so a change to them is published like one.
    reentry = models.CharField(max_length=8, choices=Reentry.choices, default=Reentry.NEVER)
    reentry_days = models.PositiveIntegerField(null=True, blank=True)  # with Reentry.AFTER
    max_enrollments = models.PositiveIntegerField(null=True, blank=True)  # None: no limit
    exit_on_goal = models.BooleanField(default=True)
    exit_events = models.JSONField(default=list, blank=True)  # event names that end a journey
    # Filled when published, from the graph (journeys.graph): what the engine matches events
    # and clocks against without reading nodes.
    trigger_kind = models.CharField(max_length=40, blank=True)
    trigger_event = models.CharField(max_length=200, blank=True)  # event triggers
    goal_events = models.JSONField(default=list, blank=True)  # names the goal nodes listen for
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "journey", "number"], name="journey_version_tenant_number"
            ),
            models.UniqueConstraint(
                fields=["tenant", "journey"],
                condition=Q(state="draft"),
                name="journey_version_tenant_one_draft",
            ),
            models.UniqueConstraint(
                fields=["tenant", "journey"],
                condition=Q(state="published"),
                name="journey_version_tenant_one_live",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "trigger_event"],
                condition=Q(state="published"),
                name="journey_version_tenant_trigger",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class Node(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="nodes", db_constraint=False
    )
    key = models.CharField(max_length=40)  # stable across versions
    kind = models.CharField(max_length=40)  # journeys.node_kinds registry key
    label = models.CharField(max_length=120, blank=True)  # the marketer's own name for the step
    settings = models.JSONField(default=dict, blank=True)  # validated by the kind
    # Where the editor draws it; None: the server's layout decides (journeys.graph.layout).
    x = models.IntegerField(null=True, blank=True)
    y = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["version", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "version", "key"], name="journey_node_tenant_version_key"
            ),
        ]

    def __str__(self) -> str:
        return self.label or f"{self.kind} {self.key}"


class Edge(models.Model):
    """From a node's named port ("next", "yes", "no", "timeout", "a", …) to another node."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="edges", db_constraint=False
    )
    source = models.CharField(max_length=40)  # node key
    port = models.CharField(max_length=40)
    target = models.CharField(max_length=40)  # node key

    class Meta:
        ordering = ["version", "id"]
        constraints = [
            # Each port leads to at most one node.
            models.UniqueConstraint(
                fields=["tenant", "version", "source", "port"],
                name="journey_edge_tenant_port",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}.{self.port} → {self.target}"


class Enrollment(models.Model):
    """One contact travelling one version of a journey, standing at `node_key`.

    ACTIVE with `due_at`: the engine runs the node at `due_at` (now, or when a delay ends).
    WAITING: waiting at a node for `wait_event` (matching `wait_match`) or, at `due_at`, the
    timeout. The rest are final."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting"
        COMPLETED = "completed", "Completed"  # reached the end of its path or an exit step
        CONVERTED = "converted", "Converted"  # met the goal (and left, when the journey says so)
        EXITED = "exited", "Exited"  # left on an exit event, by archiving or by a merge
        FAILED = "failed", "Failed"  # a step failed for good; `failure` says why; retryable

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrollments", db_constraint=False
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    node_key = models.CharField(max_length=40)
    # When it reached `node_key`: waits count from here, so running a wait again (after a
    # crash, or after a publish moved it onto a changed wait) computes the same or the new end.
    arrived_at = models.DateTimeField(default=now)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    due_at = models.DateTimeField(null=True, blank=True)
    wait_event = models.CharField(max_length=200, blank=True)
    wait_match = models.JSONField(default=dict, blank=True)  # {"cart_id": "c-1"}: keyed waits
    # What it entered with: {"event": {name, properties, occurred_at, id}, "data": {…}}; actions
    # render it (`event.…`, `data.…`), keyed waits compare with it.
    context = models.JSONField(default=dict, blank=True)
    steps_taken = models.PositiveIntegerField(default=0)  # part of every action's idempotency key
    attempts = models.PositiveSmallIntegerField(default=0)  # failed tries of the current step
    failure = models.TextField(blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    entered_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-entered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="journey_enrollment_tenant_public"
            ),
            # One journey at a time per contact: re-entry starts a new one after the last ended.
            models.UniqueConstraint(
                fields=["tenant", "journey", "contact"],
                condition=Q(state__in=["active", "waiting"]),
                name="journey_enrollment_tenant_one_open",
            ),
        ]
        indexes = [
            # The engine's clock: open enrollments by when they are due.
            models.Index(
                fields=["due_at"],
                condition=Q(state__in=["active", "waiting"]),
                name="journey_enrollment_due",
            ),
            # Events wake waits: open enrollments of these contacts.
            models.Index(
                fields=["tenant", "contact"],
                condition=Q(state__in=["active", "waiting"]),
                name="journey_enrollment_open",
            ),
            models.Index(
                fields=["tenant", "version", "node_key", "state"], name="journey_enr_node"
            ),
            # What journeys earned lately (the dashboard): conversions by time, only those.
            models.Index(
                fields=["tenant", "converted_at"],
                condition=Q(converted_at__isnull=False),
                name="journey_enr_tenant_converted",
            ),
            # Conversions and revenue per journey (the funnels' list, the journey map, a
            # funnel's totals) from this index alone, never every enrollment of the journey.
            CoveringIndex(  # INCLUDE on PostgreSQL; SQLite has none and gets the plain index
                fields=["tenant", "journey"],
                include=["revenue"],
                condition=Q(converted_at__isnull=False),
                name="journey_enr_tenant_jrny_conv",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.journey_id} at {self.node_key} ({self.state})"


class Step(models.Model):
    """One line of an enrollment's log: what happened at a node. `result` is the port followed,
    or one of the words below; `detail` says more (the wait's end, the skip's reason, the
    versions of a move)."""

    class Result(models.TextChoices):
        ENTERED = "entered", "Entered"
        WAITING = "waiting", "Waiting"
        FOLLOWED = "followed", "Followed a port"
        SENT = "sent", "Message decided"
        FAILED = "failed", "Failed"
        RETRIED = "retried", "Retried"
        MOVED = "moved", "Moved to another version"
        CONVERTED = "converted", "Converted"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="steps", db_constraint=False
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    node_key = models.CharField(max_length=40)
    result = models.CharField(max_length=10, choices=Result.choices)
    port = models.CharField(max_length=40, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["enrollment", "id"]
        indexes = [
            # Per-node counts on the canvas.
            models.Index(
                fields=["tenant", "version", "node_key", "result"], name="journey_step_node"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id} {self.node_key} {self.result}"
