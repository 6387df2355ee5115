"""How many tests a person and a team may send from the editor: a test goes out at once, past
the outbox and its hourly limit, so it has limits of its own (docs/operations.md, "Sender
verification and test sends").

Counted in Django's cache (`django.core.cache.cache`) in fixed windows, the clock hour per
person and the UTC day per team: `cache.add` then `cache.incr`, atomic on Redis and in the
local-memory cache. A cache shared by the web processes makes the limits exact; a per-process
one multiplies them by the number of processes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils.timezone import now

from tenants.models import Tenant


def limits() -> tuple[int, int]:
    """(tests per person per hour, tests per team per day)."""
    return (
        int(getattr(settings, "MESSAGING_SEND_TESTS_PER_USER_HOUR", 10)),
        int(getattr(settings, "MESSAGING_SEND_TESTS_PER_TENANT_DAY", 50)),
    )


def _keys(*, tenant: Tenant, user_id: int, at: datetime) -> tuple[str, str]:
    hour, day = int(at.timestamp() // 3600), int(at.timestamp() // 86400)
    return f"wf:send-test:user:{user_id}:{hour}", f"wf:send-test:tenant:{tenant.pk}:{day}"


def _incr(key: str, timeout: int) -> None:
    cache.add(key, 0, timeout)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout)


def send_test_take(*, tenant: Tenant, user_id: int) -> str | None:
    """Count one test of `user_id` for `tenant`; or, when a limit is reached, count nothing and
    return why (for the person who pressed the button)."""
    at = now()
    per_user, per_tenant = limits()
    user_key, tenant_key = _keys(tenant=tenant, user_id=user_id, at=at)
    if cache.get(user_key, 0) >= per_user:
        next_hour = datetime.fromtimestamp((at.timestamp() // 3600 + 1) * 3600, tz=UTC)
        return (
            f"Nothing was sent: you sent {per_user} tests this hour, the most one person may. "
            f"The next can go at {next_hour:%H:%M} UTC."
        )
    if cache.get(tenant_key, 0) >= per_tenant:
        return (
            f"Nothing was sent: your team sent {per_tenant} tests today, the most a team may. "
            "More can go tomorrow (from 00:00 UTC)."
        )
    _incr(user_key, 3600)
    _incr(tenant_key, int(timedelta(days=1).total_seconds()))
    return None
