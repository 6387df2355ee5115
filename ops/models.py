from __future__ import annotations

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """The last time a background process proved it is alive (not tenant data)."""

    class Process(models.TextChoices):
        BEAT = "beat", "Celery beat"
        WORKER = "worker", "Celery worker"

    process = models.CharField(max_length=16, choices=Process.choices, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.process} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class SchedulerLease(models.Model):
    """Which beat process may dispatch the periodic tasks now (not tenant data). A second beat
    (a deploy that overlaps, a forgotten process) stands by instead of sending every task again,
    and takes over once the leader has not renewed its lease for BEAT_LEASE_SECONDS."""

    name = models.CharField(max_length=32, unique=True)
    holder = models.CharField(max_length=255)  # host/pid/random of the leading beat
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
