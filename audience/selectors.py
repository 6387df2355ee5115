"""Reads for the audience, including the gatekeepers that 404 on other tenants' objects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.http import Http404
from django.utils.timezone import now

from audience import recommendations
from audience.models import Contact, Event, Identity, InboxBatch, LifecycleStage, Product

# Product recommendations are reads other apps use (messaging's Liquid context); they live in
# their own module, published here.
from audience.orders import ORDER_EVENT as ORDER_EVENT
from audience.recommendations import contact_interests as contact_interests
from audience.recommendations import order_lines as order_lines
from audience.recommendations import recommend as recommend
from audience.recommendations import recommend_strategies as recommend_strategies
from audience.recommendations import recommend_strategy as recommend_strategy

# The lifecycle stage event's name and the team's stage rules, for the apps above (analytics'
# rollups and map, webhooks, journeys' triggers) and audience's own views.
from audience.stages import STAGE_CHANGED as STAGE_CHANGED
from audience.stages import stage_rules as stage_rules
from core.ids import uuid_or_404
from tenants.models import Tenant

# The recommendations API's strategies (audience/recommendations.py), for personalisation.
RECOMMENDATION_STRATEGIES = recommendations.STRATEGIES
RECOMMENDATION_AUTO = recommendations.AUTO
RecommendationVisitor = recommendations.Visitor


def contact_get(*, tenant: Tenant, public_id: object) -> Contact:
    contact = Contact.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="contact")
    ).first()
    if contact is None:
        raise Http404("No such contact")
    return contact


def contact_list(
    *,
    tenant: Tenant,
    search: str = "",
    email: str = "",
    user_id: str = "",
    lifecycle_stage: str = "",
) -> QuerySet[Contact]:
    """Contacts, most recently seen first. `search` matches the start of email or names, or a
    user id exactly: each prefix match has its own index (UpperPrefixIndex on Contact)."""
    qs = Contact.objects.filter(tenant=tenant)
    if search:
        term = search.strip()
        prefix = Upper(Value(term))  # upper-cased by the database, as the columns are
        qs = qs.filter(
            Q(email_upper__prefix=prefix)
            | Q(first_name_upper__prefix=prefix)
            | Q(last_name_upper__prefix=prefix)
            | Q(user_id=term)
        )
    if email:
        qs = qs.filter(email=email.strip().lower())
    if user_id:
        qs = qs.filter(user_id=user_id)
    if lifecycle_stage:
        qs = qs.filter(lifecycle_stage=lifecycle_stage)
    return qs


def contact_find(*, tenant: Tenant, user_id: str = "", email: str = "") -> Contact | None:
    """The contact a user id (preferred) or email address names."""
    if user_id:
        identity = (
            Identity.objects.select_related("contact")
            .filter(tenant=tenant, kind=Identity.Kind.USER_ID, value=user_id)
            .first()
        )
        if identity is not None:
            return identity.contact
        if not email:
            return None
    if email:
        return (
            Contact.objects.filter(tenant=tenant, email=email.strip().lower())
            .order_by("created_at")
            .first()
        )
    return None


def contact_for_visitor(
    *, tenant: Tenant, user_id: str | None = None, anonymous_id: str | None = None
) -> Contact | None:
    """The contact a browser or server call names: its user id first (the person, once known),
    else its anonymous id (the browser). None for a visitor Wayfarer has not recorded yet; reading
    never creates a contact (recording an event does, through ingestion)."""
    wanted = [(Identity.Kind.USER_ID, user_id), (Identity.Kind.ANONYMOUS_ID, anonymous_id)]
    for kind, value in wanted:
        if not value:
            continue
        identity = (
            Identity.objects.select_related("contact")
            .filter(tenant=tenant, kind=kind, value=value)
            .first()
        )
        if identity is not None:
            return identity.contact
    return None


def event_names_recent(*, tenant: Tenant, sample: int = 5_000) -> list[str]:
    """The names of the tenant's tracked events among its latest `sample`, sorted: what an
    editor suggests when asking for an event name (a bounded read, not a scan of all events)."""
    recent = (
        Event.objects.filter(tenant=tenant, type=Event.Type.TRACK)
        .order_by("-received_at")
        .values_list("name", flat=True)[:sample]
    )
    return sorted(set(recent))


def event_list(
    *,
    tenant: Tenant,
    contact: Contact | None = None,
    name: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Event]:
    """The tenant's events (with their contact), for the timeline and the events API. Bounds on
    occurred_at (`since`, `until`, a keyset page's start) are what let PostgreSQL read only
    those months of the partitioned table (docs/architecture.md, "Events")."""
    qs = Event.objects.filter(tenant=tenant).select_related("contact")
    if contact is not None:
        qs = qs.filter(contact=contact)
    if name:
        qs = qs.filter(name=name)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs


def product_list(
    *, tenant: Tenant, category: str = "", in_stock: bool | None = None
) -> QuerySet[Product]:
    qs = Product.objects.filter(tenant=tenant)
    if category:
        qs = qs.filter(category=category)
    if in_stock is not None:
        qs = qs.filter(in_stock=in_stock)
    return qs


def contact_export_rows(contacts: QuerySet[Contact]) -> Iterator[list[str]]:
    """The contacts export's CSV rows (header first) for any set of contacts, e.g. a segment's
    members: the same columns and formula defusing as the contacts list's export, read in
    keyset pages so memory stays flat."""
    from audience import csv_io  # csv_io imports services, which imports this module

    return csv_io.export_rows(contacts)


INBOX_COUNT_CAP = 10_000


def inbox_backlog() -> dict[str, int | float | None]:
    """What the ingest worker has not recorded yet, for /healthz: waiting rows (counted up to
    INBOX_COUNT_CAP, so a large backlog stays cheap to report), the age of the oldest in
    seconds, and rows set aside as failed (an operator retries them in the admin)."""
    waiting = InboxBatch.objects.filter(failed_at=None)
    oldest = waiting.order_by("id").values_list("received_at", flat=True).first()
    return {
        "waiting": waiting[:INBOX_COUNT_CAP].count(),
        "oldest_waiting_seconds": (
            None if oldest is None else round((now() - oldest).total_seconds(), 1)
        ),
        "failed": InboxBatch.objects.exclude(failed_at=None)[:INBOX_COUNT_CAP].count(),
    }


def lifecycle_stage_counts(*, tenant: Tenant) -> dict[str, int]:
    """How many of the team's contacts are in each lifecycle stage: every stage, in journey
    order, 0 when empty (the journey map's counts). One GROUP BY answered from the index
    (tenant, lifecycle_stage) alone: COUNT(*) needs no other column, so PostgreSQL reads only
    the index (an index-only scan; docs/lifecycle.md has the figures at 1M contacts)."""
    rows = (
        Contact.objects.filter(tenant=tenant)
        .order_by()
        .values_list("lifecycle_stage")
        .annotate(n=Count("*"))
    )
    counts = dict.fromkeys(LifecycleStage.values, 0)
    for stage, n in rows:
        if stage in counts:
            counts[stage] = n
    return counts
