"""Entering a journey: the re-entry rule, the maximum, the one open enrollment per contact and
journey (a partial unique constraint), and the `entered` step. Every trigger ends here: events
and segments (journeys/reactions.py), dates (journeys/dates.py) and the API
(`enrollment_start`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from journeys.models import Enrollment, Journey, JourneyVersion, Reentry, Step

if TYPE_CHECKING:
    from audience.models import Contact
    from tenants.models import Tenant

from journeys.engine import OPEN, Graph, advance_later, graphs_load

log = logging.getLogger(__name__)

# --- entering --------------------------------------------------------------------------------


def _may_enter(
    *,
    version: JourneyVersion,
    journey_id: int,
    contact_id: int,
    now: datetime,
    occurrence: str,
    event_id: object = None,
) -> bool:
    previous = Enrollment.objects.filter(
        tenant_id=version.tenant_id, journey_id=journey_id, contact_id=contact_id
    )
    if occurrence:  # a date trigger: once per date, whatever the re-entry rule
        return not previous.filter(Q(context__occurrence=occurrence) | Q(state__in=OPEN)).exists()
    last = previous.order_by("-entered_at").values_list("state", "entered_at").first()
    if last is None:
        return True
    if last[0] in OPEN or version.reentry == Reentry.NEVER:
        return False
    if version.reentry == Reentry.AFTER and last[1] > now - timedelta(
        days=version.reentry_days or 0
    ):
        return False
    # An event enters a contact once: the same events looked at again (a task redelivered
    # after a worker died) must not start a second run of a journey that allows re-entry.
    return event_id is None or not previous.filter(context__event__id=event_id).exists()


def enter(
    *,
    graph: Graph,
    contact_id: int,
    context: dict[str, Any],
    now: datetime,
    occurrence: str = "",
) -> Enrollment | None:
    """Enroll one contact into a published version (caller's transaction); None when the
    journey's rules or the one-open constraint say no."""
    version = graph.version
    trigger = graph.trigger
    if trigger is None:
        return None
    if not _may_enter(
        version=version,
        journey_id=version.journey_id,
        contact_id=contact_id,
        now=now,
        occurrence=occurrence,
        event_id=(context.get("event") or {}).get("id"),
    ):
        return None
    if version.max_enrollments is not None:
        # Serialise entries into a capped journey (its row lock) so the cap holds exactly.
        Journey.objects.select_for_update().filter(pk=version.journey_id).values_list("pk")[
            :1
        ].get()
        count = Enrollment.objects.filter(
            tenant_id=version.tenant_id, journey_id=version.journey_id
        ).count()
        if count >= version.max_enrollments:
            return None
    if occurrence:
        context = {**context, "occurrence": occurrence}
    enrollment = Enrollment(
        tenant_id=version.tenant_id,
        journey_id=version.journey_id,
        version=version,
        contact_id=contact_id,
        node_key=trigger.key,
        arrived_at=now,
        due_at=now,
        state=Enrollment.State.ACTIVE,
        context=context,
        entered_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: another process enrolled them just now
            enrollment.save(force_insert=True)
    except IntegrityError:
        return None
    Step.objects.create(
        tenant_id=version.tenant_id,
        enrollment=enrollment,
        version=version,
        node_key=trigger.key,
        result=Step.Result.ENTERED,
        detail={"trigger": trigger.kind},
        created_at=now,
    )
    return enrollment


def enrollment_start(
    *,
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    context: dict[str, Any],
    now: datetime | None = None,
    advance: bool = True,
) -> Enrollment | None:
    """Enroll `contact` into the live journey's published version now (the API trigger, a
    test, the events' triggers). None when the journey is not live, or its re-entry rule, its
    maximum or an open enrollment of the contact says no. The first steps run right after
    commit (a queued task; `advance=False` leaves them to the caller or the beat)."""
    if journey.tenant_id != tenant.pk or contact.tenant_id != tenant.pk:
        raise ValueError("the journey and the contact must be the tenant's")
    now = now or timezone.now()
    journey = Journey.objects.get(tenant=tenant, pk=journey.pk)
    if journey.status != Journey.Status.LIVE:
        return None
    version_id = (
        JourneyVersion.objects.filter(
            tenant=tenant, journey=journey, state=JourneyVersion.State.PUBLISHED
        )
        .values_list("pk", flat=True)
        .first()
    )
    if version_id is None:
        return None
    graph = graphs_load([version_id])[version_id]
    with transaction.atomic():
        enrollment = enter(graph=graph, contact_id=contact.pk, context=dict(context), now=now)
        if enrollment is not None and advance:
            ids = [enrollment.pk]
            transaction.on_commit(lambda: advance_later(ids), robust=True)
    return enrollment
