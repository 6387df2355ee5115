from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import current_app  # the project's app (config loads it with Django)
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from audience.selectors import inbox_backlog
from ops.models import Heartbeat
from ops.supervisor import STATE_FILE_NAME, read_state


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except DatabaseError as exc:
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}


def broker_status() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    try:
        with current_app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": transport}
    except Exception as exc:  # kombu raises transport-specific errors
        return {"ok": False, "transport": transport, "error": str(exc)}


def heartbeat_status(*, process: str) -> dict[str, Any]:
    try:
        beat = Heartbeat.objects.filter(process=process).first()
    except DatabaseError:
        beat = None
    if beat is None:
        return {"ok": False, "last_seen": None, "age_seconds": None}
    age = (timezone.now() - beat.seen_at).total_seconds()
    return {
        "ok": age <= settings.HEALTH_STALE_AFTER_SECONDS,
        "last_seen": beat.seen_at.isoformat(),
        "age_seconds": round(age, 1),
    }


def ingest_status() -> dict[str, Any]:
    """The ingestion inbox: accepted /v1/* requests not recorded yet. Not ok when the oldest has
    waited longer than HEALTH_STALE_AFTER_SECONDS (the ingest worker is down or behind) or
    when the worker set rows aside as failed."""
    try:
        backlog = inbox_backlog()
    except DatabaseError as exc:
        return {"ok": False, "error": str(exc)}
    age = backlog["oldest_waiting_seconds"]
    late = age is not None and age > settings.HEALTH_STALE_AFTER_SECONDS
    return {"ok": not late and not backlog["failed"], **backlog}


def processes_status() -> dict[str, Any] | None:
    """The processes `make run` supervises (ops/supervisor.py): running or not, and how often
    each was restarted. None when no supervisor runs (production's own service manager)."""
    state = read_state(Path(settings.VAR_DIR) / STATE_FILE_NAME)
    if state is None:
        return None
    report: dict[str, Any] = {"ok": True}
    for name, process in state.get("processes", {}).items():
        restarts = process.get("restarts", 0)
        summary = "running" if process.get("running") else "down, restarting"
        if restarts:
            times = "once" if restarts == 1 else f"{restarts} times"
            summary += f"; restarted {times}, last at {process.get('last_restart_at')}"
            summary += f" (it had exited with code {process.get('last_exit_code')})"
        report["ok"] = report["ok"] and bool(process.get("running"))
        report[name] = {**process, "summary": f"{name} {summary}"}
    return report


def health_report() -> dict[str, Any]:
    report = {
        "database": database_status(),
        "broker": broker_status(),
        "beat": heartbeat_status(process=Heartbeat.Process.BEAT),
        "worker": heartbeat_status(process=Heartbeat.Process.WORKER),
        "ingest": ingest_status(),
    }
    processes = processes_status()
    if processes is not None:
        report["processes"] = processes
    if not (report["database"]["ok"] and report["broker"]["ok"]):
        status = "down"
    elif not all(report[part]["ok"] for part in report if part not in ("database", "broker")):
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, **report}
