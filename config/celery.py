"""The Celery app: named queues, routes, and every periodic task declared here, in one place.

django-celery-beat's database scheduler installs `beat_schedule` into its tables when beat starts,
so operators can still pause or re-time a schedule from the admin.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# filesystem:// (the embedded default's broker) means kombu's file-system transport with atomic
# writes, acknowledgements and redelivery after a worker dies (ops/broker.py). An alias rather
# than the broker_transport setting, which would apply to a redis:// URL as well.
TRANSPORT_ALIASES["filesystem"] = "ops.broker:Transport"

app = Celery("wayfarer")
app.config_from_object("django.conf:settings", namespace="CELERY")

# One queue per kind of work, so production can give each its own workers (docs/operations.md).
QUEUES = ("default", "ingest", "engine", "email", "push")
app.conf.task_queues = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
]
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    # Maintenance of the events table runs for minutes (a retention run deletes in batches): not
    # on the ingest queue, whose worker must keep recording. Celery takes the first match.
    "audience.tasks.retention_apply": {"queue": "default"},
    "audience.tasks.partitions_maintain": {"queue": "default"},
    # Lifecycle stages are not ingestion: recomputing them must not delay the ingest worker.
    "audience.tasks.lifecycle_stages_refresh_contacts": {"queue": "engine"},
    "audience.tasks.lifecycle_stages_refresh_team": {"queue": "default"},
    "audience.tasks.lifecycle_stages_refresh_all": {"queue": "default"},
    "audience.tasks.recommendation_stats_refresh_all": {"queue": "default"},
    "audience.tasks.recommendation_stats_refresh_team": {"queue": "default"},
    "audience.tasks.*": {"queue": "ingest"},
    # A persona run reads a team's behaviour for seconds to a minute: maintenance-like work.
    "personalisation.personas.tasks.*": {"queue": "default"},
    "segments.tasks.*": {"queue": "engine"},
    "journeys.tasks.*": {"queue": "engine"},
    "campaigns.tasks.*": {"queue": "engine"},
    "messaging.tasks.send_email*": {"queue": "email"},
    "messaging.tasks.send_push*": {"queue": "push"},
    # Outbound HTTP to the teams' own URLs, with short timeouts, like web push.
    "webhooks.tasks.*": {"queue": "push"},
    # Rebuilds and re-checks read a day or more of raw events: maintenance, not the hot path.
    "analytics.tasks.*": {"queue": "default"},
}
# A task is acknowledged after it ran, so a worker killed mid-task leaves it to be redelivered;
# tasks are written to be safe to run twice.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 4
app.conf.broker_connection_retry_on_startup = True

app.conf.beat_schedule = {
    # Proves a worker is consuming: /healthz shows when it last ran.
    "ops.worker-heartbeat": {"task": "ops.tasks.worker_heartbeat", "schedule": 15.0},
    # The /v1/* endpoints wake the ingest worker themselves; this catches a wake-up that was
    # lost (the broker was down when a request was accepted).
    "audience.inbox-drain": {"task": "audience.tasks.inbox_drain", "schedule": 10.0},
    # Senders are woken when a message is decided; these catch lost wake-ups, deferred
    # messages coming due (quiet hours, retries) and rows of a worker that died (recovery).
    "messaging.send-email-due": {"task": "messaging.tasks.send_email_due", "schedule": 10.0},
    "messaging.send-push-due": {"task": "messaging.tasks.send_push_due", "schedule": 10.0},
    # Rolling windows ("in the last 30 days") and birthdays move with the clock, not with events.
    "segments.refresh-time-relative": {
        "task": "segments.tasks.segment_memberships_refresh_time_relative",
        "schedule": 600.0,
    },
    # The journeys' clock: enrollments whose wait ended (or that were woken, started or retried
    # and not yet run) advance within seconds; the task keeps taking batches while they are full.
    "journeys.advance-due": {"task": "journeys.tasks.advance_due", "schedule": 5.0},
    # Birthdays and other yearly dates at a local time: each scan enrolls whose moment passed
    # since (once per date, however often it runs).
    "journeys.date-triggers-scan": {"task": "journeys.tasks.date_triggers_scan", "schedule": 300.0},
    # The campaigns' clock: start due campaigns, release due recipients, decide due winners,
    # finish occurrences (a recurring campaign's slots come from its own PeriodicTask row).
    "campaigns.tick": {"task": "campaigns.tasks.campaigns_tick", "schedule": 10.0},
    # Monthly event partitions exist ahead of the clock (PostgreSQL; audience/partitions.py), and
    # rows that landed in the catch-all partition move to their month's.
    "audience.partitions-maintain": {
        "task": "audience.tasks.partitions_maintain",
        "schedule": 3600.0,
    },
    # Raw events older than each team's retention go (audience/retention.py): whole monthly
    # partitions where no team still keeps them, else in batches. Rollups are built first.
    "audience.retention-apply": {
        "task": "audience.tasks.retention_apply",
        "schedule": crontab(hour=3, minute=17),
    },
    # Lifecycle stages the clock moves (an onboarding ends, a customer drifts, a review gets old):
    # every team's contacts re-evaluated in batches (audience/stages.py). Events move the rest.
    "audience.lifecycle-stages-daily": {
        "task": "audience.tasks.lifecycle_stages_refresh_all",
        "schedule": crontab(hour=2, minute=41),
    },
    # Recommendations' precomputed trending products and co-purchase counts
    # (audience/recommendation_stats.py): one task per team, each replacing its rows.
    "audience.recommendation-stats-hourly": {
        "task": "audience.tasks.recommendation_stats_refresh_all",
        "schedule": crontab(minute=23),
    },
    # Analytics rollups (analytics/tasks.py, snapshots.py, rebuild.py): each team's stage
    # snapshot of its local day;
    # in its first local hour, yesterday's snapshot and rollups re-checked from the raw events;
    # a team whose time zone changed is rebuilt in the new one.
    "analytics.rollups-hourly": {
        "task": "analytics.tasks.rollups_hourly",
        "schedule": crontab(minute=7),
    },
    # Webhook messages are sent when written (on commit); this catches lost wake-ups, retries
    # coming due (5 s … 10 h backoff) and messages of a worker that died (recovery).
    "webhooks.send-due": {"task": "webhooks.tasks.send_due", "schedule": 10.0},
    # The webhook log keeps finished messages for WAYFARER_WEBHOOK_LOG_DAYS.
    "webhooks.messages-prune": {
        "task": "webhooks.tasks.messages_prune",
        "schedule": crontab(hour=4, minute=11),
    },
}

app.autodiscover_tasks()


# --- Row-level security (core/rls.py) ---
# Workers and beat are our own code and span tenants (the inbox drain, the senders' queues, beat's
# schedules): they run in the system scope. Row-level security guards the web edge. A task run
# in-process (eager, in tests) gets the system scope for its run and gives the caller's back.
@signals.worker_init.connect
@signals.worker_process_init.connect
@signals.beat_init.connect
def _rls_system_process(**kwargs: Any) -> None:
    from core import rls

    rls.process_default_set(rls.SYSTEM)


_rls_before_task: dict[str, Any] = {}


@signals.task_prerun.connect
def _rls_task_start(task_id: str = "", **kwargs: Any) -> None:
    from core import rls

    _rls_before_task[task_id] = rls.current()
    rls.system_set()


@signals.task_postrun.connect
def _rls_task_end(task_id: str = "", **kwargs: Any) -> None:
    from core import rls

    rls.restore(_rls_before_task.pop(task_id, rls.current()))
