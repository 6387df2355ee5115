from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import current_app  # the project's app (config loads it with Django)
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from audience.selectors import inbox_backlog
from core import rls
from core.outbound import allow_private
from messaging.selectors import email_webhook_status
from ops.models import Heartbeat
from ops.supervisor import STATE_FILE_NAME, read_state


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor, **_row_security()}
    except DatabaseError as exc:
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}


def _row_security() -> dict[str, Any]:
    """A warning, not a failure, when the app's database role ignores row-level security
    (a superuser or BYPASSRLS role, as local development's `postgres`): tenancy then rests on
    the application's filters alone. docs/operations.md says how to create the app's role."""
    bypassed = rls.role_bypasses_rls()
    if bypassed is None:  # SQLite: no row-level security to speak of
        return {}
    if not bypassed:
        return {"row_level_security": "enforced"}
    return {
        "row_level_security": "bypassed",
        "warning": "The database role is a superuser or has BYPASSRLS: row-level security "
        "does not apply to it. Connect as an ordinary role (docs/operations.md).",
    }


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
        with rls.system_scope():  # every tenant's inbox
            backlog = inbox_backlog()
    except DatabaseError as exc:
        return {"ok": False, "error": str(exc)}
    age = backlog["oldest_waiting_seconds"]
    late = age is not None and age > settings.HEALTH_STALE_AFTER_SECONDS
    return {"ok": not late and not backlog["failed"], **backlog}


def configuration_warnings(*, allow_private_on: bool, webhook: dict[str, Any]) -> list[str]:
    """What the configuration leaves unsafe or not working, said loudly: not a process being
    down, so it does not change the status."""
    warnings = []
    if allow_private_on:
        warnings.append(
            "WAYFARER_OUTBOUND_ALLOW_PRIVATE is on: push endpoints (and later webhooks) may "
            "reach loopback and private addresses. For tests and local development only."
        )
    if webhook["esp"] and not webhook["configured"]:
        warnings.append(
            f"The {webhook['esp']} tracking webhook is not configured: bounces, complaints and "
            f"unsubscribes are refused until {webhook.get('settings') or 'its secret'} is set "
            "(docs/operations.md)."
        )
    return warnings


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
        "outbound": {"allow_private": allow_private()},
        "email_webhook": email_webhook_status(),
    }
    processes = processes_status()
    if processes is not None:
        report["processes"] = processes
    if not (report["database"]["ok"] and report["broker"]["ok"]):
        status = "down"
    elif not all(
        report[part]["ok"] for part in ("beat", "worker", "ingest", "processes") if part in report
    ):
        status = "degraded"
    else:
        status = "ok"
    warnings = configuration_warnings(
        allow_private_on=report["outbound"]["allow_private"], webhook=report["email_webhook"]
    )
    if report["database"].get("warning"):
        warnings.append(report["database"]["warning"])
    return {"status": status, "warnings": warnings, **report}
