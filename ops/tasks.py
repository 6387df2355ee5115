from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from ops.models import Heartbeat
from ops.services import heartbeat_record


@shared_task(name="ops.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    """Sent by beat every few seconds; running it proves a worker consumes the queue."""
    heartbeat_record(process=Heartbeat.Process.WORKER)


@worker_ready.connect
def _worker_ready(**kwargs: object) -> None:
    # Report at once rather than at the first scheduled heartbeat.
    heartbeat_record(process=Heartbeat.Process.WORKER)
