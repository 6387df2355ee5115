"""What the apps above audience add to it without audience importing them: they register in
their AppConfig.ready().

`before_events_removed(tenant_id, cutoff)` is called by retention (audience/retention.py) for
every team before any of that team's raw events older than `cutoff` are removed: a hook keeps
what it counts from those events (campaigns freeze their results). A hook that raises stops the
run before it removes anything, so nothing is removed that a hook could not keep first; the
next night's run tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

# hook(tenant_id=…, cutoff=…) -> None; must be safe to call again with the same arguments.
BEFORE_EVENTS_REMOVED: list[Callable[..., object]] = []


def before_events_removed_register(hook: Callable[..., object]) -> None:
    if hook not in BEFORE_EVENTS_REMOVED:  # ready() may run twice (tests, management commands)
        BEFORE_EVENTS_REMOVED.append(hook)


def before_events_removed(tenant_id: int, cutoff: datetime) -> None:
    """Run every registered hook for one team, about to lose its events before `cutoff`."""
    for hook in BEFORE_EVENTS_REMOVED:
        hook(tenant_id=tenant_id, cutoff=cutoff)
