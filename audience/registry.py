"""What the apps above audience add to it without audience importing them: they register in
their AppConfig.ready().

`before_events_removed(tenant_id, cutoff)` is called by retention (audience/retention.py) for
every team before any of that team's raw events older than `cutoff` are removed: a hook keeps
what it counts from those events (campaigns freeze their results). A hook that raises stops the
run before it removes anything, so nothing is removed that a hook could not keep first; the
next night's run tries again.

`events_stored(tenant=…, rows=[EventRow…], ids=[int…])` is called by the one place that stores
events (audience.services), inside the transaction that inserts them, with the rows and their new
ids in the same order: what a hook writes there commits or rolls back with the events, so
counts kept from them (analytics' rollups) are exact even when a worker dies or a task runs
twice. A hook must be set-based and cheap: it runs on ingestion's hot path.
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


# hook(tenant=…, rows=…, ids=…) -> None, inside the storing transaction.
EVENTS_STORED: list[Callable[..., object]] = []


def events_stored_register(hook: Callable[..., object]) -> None:
    if hook not in EVENTS_STORED:
        EVENTS_STORED.append(hook)


def events_stored(*, tenant: object, rows: object, ids: list[int]) -> None:
    for hook in EVENTS_STORED:
        hook(tenant=tenant, rows=rows, ids=ids)


# summarise(tenant=…, events=[Event…]) -> {event.pk: "one line"}: how the apps above audience
# put their own events into words on a contact's timeline (messaging: a message's subject and
# outcome). One call per page of events: set-based, a query or two at most.
EVENT_SUMMARIES: list[Callable[..., dict[int, str]]] = []


def event_summaries_register(summarise: Callable[..., dict[int, str]]) -> None:
    if summarise not in EVENT_SUMMARIES:
        EVENT_SUMMARIES.append(summarise)


# find(tenant=…) -> str | None: the public id of the survey the demo shop's home page embeds
# (personalisation's surveys register theirs; without one the page shows none).
DEMO_SURVEY_FINDERS: list[Callable[..., str | None]] = []


def demo_survey_finder_register(find: Callable[..., str | None]) -> None:
    if find not in DEMO_SURVEY_FINDERS:
        DEMO_SURVEY_FINDERS.append(find)
