"""Personas: a clustering run over a team's contacts and the groups (personas) it found.

A run is requested by a marketer (`queued`), taken by the worker (`running`) and ends `done`
(its clusters in `clusters`), `too_few` (not enough contacts to cluster: `message` says why, in
words) or `failed` (`message` holds the error). Each cluster's description, figures and the rule
tree that approximates it are in `clusters`; which contacts fell in which cluster (of the
sample) is in `members`, kept apart because no page reads it whole.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from tenants.models import Tenant


class PersonaRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        TOO_FEW = "too_few", "Too few contacts"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # What the marketer asked for: a number of personas, or None to let the silhouette choose.
    requested_k = models.PositiveSmallIntegerField(null=True, blank=True)
    k = models.PositiveSmallIntegerField(null=True, blank=True)  # what the run used
    contacts_total = models.PositiveIntegerField(default=0)  # the team's contacts at the run
    sample_size = models.PositiveIntegerField(default=0)  # how many were clustered
    silhouette = models.FloatField(null=True, blank=True)
    # [{"index", "label", "summary", "size", "share", "figures": {…}, "rules", "rules_words",
    #   "capture": {…}, "segment": {…} once saved}], largest first.
    clusters = models.JSONField(default=list, blank=True)
    # {"<cluster index>": [contact ids of the sample in it]}: the capture of a saved segment is
    # measured against it.
    members = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)  # how long the clustering took

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="persona_run_tenant_public_id"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="persona_run_recent_idx")]

    def __str__(self) -> str:
        return f"persona run {self.public_id} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
