"""Writes for the audience: the one way facts about a contact are recorded (`events_record`,
and Segment-style calls through ingestion), profiles, identities and consent."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any, NamedTuple

from django.db import IntegrityError, OperationalError, transaction
from django.utils.timezone import now

from audience import registry
from audience.bulk import EventRow, events_insert, message_ids_stored
from audience.identity import MAX_RECENTLY_VIEWED, IdentityResolver
from audience.models import MAX_QUANTITY, Contact, Event, EventKey, Identity
from audience.orders import orders_record
from audience.segment_spec import GROUP_PREFIX, Call
from audience.selectors import contact_find
from audience.signals import RecordedEvent, contacts_changed, events_recorded
from core.storable import EARLIEST, LATEST
from tenants.models import Tenant

CONTACT_EDITABLE = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "timezone",
    "locale",
    "birthday_month",
    "birthday_day",
    "birth_year",
)  # not lifecycle_stage: the team's rules compute it from behaviour (audience/stages.py)
CONSENT_CHANNELS = ("email", "push")
ATTEMPTS = 5  # see calls_record: rolled-back calls are tried again


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    event_ids: list[int] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)


def occurred_at(call: Call, received_at: datetime) -> datetime:
    """Client time corrected by the client's clock skew (received_at - sentAt), as Segment does."""
    if call.timestamp is None:
        return received_at
    if call.sent_at is None:
        return call.timestamp
    try:
        corrected = call.timestamp + (received_at - call.sent_at)
    except OverflowError:  # a sentAt centuries off: no clock is that wrong, keep the timestamp
        return call.timestamp
    # Both times are within the window (core/storable.py), their sum may not be.
    return corrected if EARLIEST <= corrected <= LATEST else call.timestamp


def calls_record(
    *,
    tenant: Tenant,
    calls: list[Call],
    source: str = "api",
    received_at: datetime | None = None,
) -> IngestResult:
    """Store a list of calls completely or not at all. Repeated messageIds (in the list or
    already stored) are stored once. Announces `events_recorded` after commit."""
    received_at = received_at or now()
    return atomic_with_retries(
        partial(calls_record_in_transaction, tenant, calls, source, received_at)
    )


def atomic_with_retries[T](work: Callable[[], T]) -> T:
    """Run `work` in a transaction, again when it rolled back for a reason that goes away."""
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return work()
        except (IntegrityError, OperationalError) as exc:
            # A concurrent call created the same identity, or PostgreSQL chose this transaction
            # as a deadlock victim: the whole call rolled back, so it is safe to run again.
            retryable = isinstance(exc, IntegrityError) or _is_serialization_failure(exc)
            if not retryable or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def calls_record_in_transaction(
    tenant: Tenant, calls: list[Call], source: str, received_at: datetime
) -> IngestResult:
    """The body of `calls_record`, for callers that own the transaction (the inbox worker
    records several requests in one). Must run inside `transaction.atomic()`."""
    return _record(tenant, calls, source, received_at)


class Fact(NamedTuple):
    """Something Wayfarer itself learnt about a contact (a message outcome, a segment entry, a
    price drop on a wished-for product), to be recorded as a track event by `events_record`.

    `key` names the fact within its `source` (e.g. a delivery's id and the outcome's name): the
    event's message id is derived from `source`, `key` and the contact, so recording the same
    fact again, by the same producer or another, stores it once. (A named tuple rather than a
    frozen dataclass: a segment entering a million contacts makes a million of them.)"""

    contact_id: int
    name: str
    key: str
    source: str
    properties: Mapping[str, Any] = {}
    occurred_at: datetime | None = None  # None: now

    @property
    def message_id(self) -> str:
        return f"wf:{self.source}:{_digest(self.key)}:{self.contact_id}"


@lru_cache(maxsize=1024)  # many facts share a key (a segment's entries, a price drop's contacts)
def _digest(key: str) -> str:
    # A digest keeps the id within the column's 100 characters whatever the key's length.
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def events_record(*, tenant: Tenant, facts: Sequence[Fact], fresh: bool = False) -> list[int]:
    """Record `facts` as events on their contacts, inside the caller's transaction (if any), and
    announce them with `events_recorded` after commit. Facts stored already (same message id)
    are left out: a replay is a no-op. Returns the ids of the events stored now.

    Set-based: one look-up of the stored message ids, one insert, whatever
    the number of facts. `fresh=True` is a hint that the keys are new by construction (they name
    the moment of this very transaction, as segment entries do): the look-up is skipped, and
    done after all only if the insert finds a repeat."""
    stamp, tenant_id, track = now(), tenant.pk, Event.Type.TRACK.value
    # Positional and without copying `properties` (facts often share one dict): a segment's
    # entries make this run for each of many thousand contacts.
    rows = [
        EventRow(
            tenant_id,
            contact_id,
            track,
            name,
            properties,  # type: ignore[arg-type]
            {},
            occurred or stamp,
            stamp,
            f"wf:{source}:{_digest(key)}:{contact_id}",  # as Fact.message_id says
            source,
        )
        for contact_id, name, key, source, properties, occurred in facts
    ]
    if not rows:
        return []
    if fresh:
        try:
            with transaction.atomic():  # a savepoint: a repeat must not break the caller's
                return _events_store(tenant, rows)
        except IntegrityError:
            pass  # some were stored before after all (or repeated here): leave them out below
    unique: dict[str, EventRow] = {}
    for row in rows:
        unique.setdefault(row.message_id, row)
    for attempt in range(2):
        stored = message_ids_stored(tenant_id=tenant_id, message_ids=list(unique))
        new = [row for message_id, row in unique.items() if message_id not in stored]
        if not new:
            return []
        try:
            with transaction.atomic():
                return _events_store(tenant, new)
        except IntegrityError:
            # Another transaction stored one of them since the look-up (a pixel loaded twice at
            # once); it has committed now, so a second look-up sees it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _events_store(tenant: Tenant, rows: Sequence[EventRow]) -> list[int]:
    """Insert events and announce them after commit: the one place where both happen, for
    ingestion and `events_record` alike. Must run inside `transaction.atomic()`."""
    ids = events_insert(rows)
    orders_record(rows)  # the order ledger, kept when retention removes the events
    if ids:
        registry.events_stored(tenant=tenant, rows=rows, ids=ids)
        transaction.on_commit(
            partial(
                events_recorded.send,
                sender=None,
                tenant=tenant,
                event_ids=ids,
                contact_ids=sorted({row.contact_id for row in rows}),
                events=list(
                    map(
                        RecordedEvent,
                        ids,
                        [r.contact_id for r in rows],
                        [r.name for r in rows],
                        [r.occurred_at for r in rows],
                    )
                ),
            ),
            robust=True,  # a failing receiver (the broker down) must not fail the committed caller
        )
    return ids


def _is_serialization_failure(exc: OperationalError) -> bool:
    # 40P01 deadlock_detected, 40001 serialization_failure
    return getattr(exc.__cause__, "sqlstate", None) in ("40P01", "40001")


def _record(tenant: Tenant, calls: list[Call], source: str, received_at: datetime) -> IngestResult:
    result = IngestResult()
    seen = message_ids_stored(tenant_id=tenant.pk, message_ids=[m.message_id for m in calls])
    fresh = []
    for call in calls:
        if call.message_id in seen:
            result.duplicates += 1
        else:
            seen.add(call.message_id)
            fresh.append(call)
    if not fresh:
        return result
    resolver = IdentityResolver(tenant)
    resolver.load(fresh)
    pending: list[tuple[Call, datetime, datetime, Contact]] = []
    for call in fresh:
        contact = resolver.resolve(call)
        received = call.received_at or received_at
        when = occurred_at(call, received)
        apply_call_to_profile(contact, call, when)
        pending.append((call, when, received, contact))
    resolver.flush()
    rows = [
        EventRow(
            tenant_id=tenant.pk,
            contact_id=resolver.canonical(contact).pk,
            type=call.type,
            name=_event_name(call),
            properties=_event_properties(call),
            context=call.context,
            occurred_at=when,
            received_at=received,
            message_id=call.message_id,
            source=source,
        )
        for call, when, received, contact in pending
    ]
    result.event_ids = _events_store(tenant, rows)
    result.stored = len(rows)
    result.contact_ids = sorted({row.contact_id for row in rows})
    return result


def _event_properties(call: Call) -> dict[str, Any]:
    if call.type == "identify":
        return call.traits
    if call.type == "group":
        return {"groupId": call.group_id, "traits": call.traits}
    return call.properties


def _event_name(call: Call) -> str:
    if call.type == "track":
        return call.event or ""
    if call.type == "page":
        return f"Viewed {call.event} Page" if call.event else "Page Viewed"
    if call.type == "screen":
        return f"Viewed {call.event} Screen" if call.event else "Screen Viewed"
    return {"identify": "Identify", "alias": "Alias", "group": "Group"}[call.type]


def _sku(properties: dict[str, Any]) -> str | None:
    value = properties.get("sku") or properties.get("product_id")
    return str(value)[:100] if value not in (None, "") else None


def _quantity(properties: dict[str, Any]) -> int:
    return _clamped_quantity(properties.get("quantity"))


def _clamped_quantity(value: object) -> int:
    """A cart quantity from 1 to MAX_QUANTITY, whatever was sent or stored before the edge
    refused larger ones: a number beyond 64 bits in the cart failed every later update of the
    contact."""
    try:
        return min(MAX_QUANTITY, max(1, int(value or 1)))  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 1


def _price(properties: dict[str, Any]) -> str | None:
    try:
        return str(Decimal(str(properties["price"])))
    except (KeyError, InvalidOperation, ValueError):
        return None


def apply_call_to_profile(contact: Contact, call: Call, when: datetime) -> None:
    """Keep the profile's derived state current: traits, last seen, cart, wishlist, recently
    viewed (Segment E-commerce spec names). The lifecycle stage follows after commit
    (audience/stages.py: the contacts of every recording are recomputed)."""
    if contact.last_seen_at is None or when > contact.last_seen_at:
        contact.last_seen_at = when
    if call.type == "identify":
        profile = dict(call.profile)
        attributes = profile.pop("attributes", None)
        for field, value in profile.items():
            setattr(contact, field, value)
        if attributes:
            contact.attributes = {**contact.attributes, **attributes}
    elif call.type == "group":
        # One group per contact: the new group's attributes replace the last one's, so no
        # trait of a former company lingers.
        kept = {k: v for k, v in contact.attributes.items() if not k.startswith(GROUP_PREFIX)}
        contact.attributes = {**kept, **call.profile["attributes"]}
    if call.type != "track":
        return
    props, sku = call.properties, _sku(call.properties)
    name = call.event
    if name == "Product Viewed" and sku:
        contact.recently_viewed = [sku, *[s for s in contact.recently_viewed if s != sku]][
            :MAX_RECENTLY_VIEWED
        ]
    elif name == "Product Added" and sku:
        cart = [dict(item) for item in contact.cart]
        for item in cart:
            if item.get("sku") == sku:
                item["quantity"] = min(
                    MAX_QUANTITY, _clamped_quantity(item.get("quantity")) + _quantity(props)
                )
                break
        else:
            cart.append(
                {
                    "sku": sku,
                    "name": props.get("name"),
                    "price": _price(props),
                    "quantity": _quantity(props),
                    "added_at": when.isoformat(),
                }
            )
        contact.cart = cart
    elif name == "Product Removed" and sku:
        cart = []
        for item in contact.cart:
            if item.get("sku") == sku:
                left = _clamped_quantity(item.get("quantity")) - _quantity(props)
                if left > 0:
                    cart.append({**item, "quantity": left})
            else:
                cart.append(item)
        contact.cart = cart
    elif name == "Order Completed":
        contact.cart = []
    elif name == "Product Added to Wishlist" and sku and sku not in contact.wishlist:
        contact.wishlist = [*contact.wishlist, sku]
    elif name == "Product Removed from Wishlist" and sku:
        contact.wishlist = [s for s in contact.wishlist if s != sku]


NULLABLE_FIELDS = ("birthday_month", "birthday_day", "birth_year")


def contacts_changed_announce(
    *, tenant: Tenant, contact_ids: Sequence[int] = (), emails: Sequence[str] = ()
) -> None:
    """Send `audience.signals.contacts_changed` once the current transaction commits, for
    `contact_ids` and the tenant's contacts with one of `emails` (a suppression names an
    address, not a contact). Other apps call this when they change what makes a contact
    reachable: a suppression, a push subscription."""
    contact_ids = list(contact_ids)
    if emails:
        wanted = sorted({e.strip().lower() for e in emails if e.strip()})
        contact_ids += Contact.objects.filter(tenant=tenant, email__in=wanted).values_list(
            "pk", flat=True
        )
    if contact_ids:
        transaction.on_commit(
            partial(
                contacts_changed.send,
                sender=None,
                tenant=tenant,
                contact_ids=sorted(set(contact_ids)),
            ),
            robust=True,  # a failing receiver (the broker down) must not fail the committed caller
        )


@transaction.atomic
def contact_upsert(
    *,
    tenant: Tenant,
    user_id: str = "",
    email: str = "",
    fields: dict[str, Any],
    source: str,
    announce: bool = True,
) -> tuple[Contact, bool]:
    """Find the contact by user id (or else email) and update it, or create it. Returns
    (contact, created). `fields` are validated values of CONTACT_EDITABLE, plus `attributes`
    (merged) and `email_consent` / `push_consent` (stamped with time and `source`).
    `announce=False` leaves `contacts_changed` to the caller (a CSV import announces per chunk)."""
    contact = contact_find(tenant=tenant, user_id=user_id, email=email)
    created = contact is None
    if contact is None:
        contact = Contact(tenant=tenant, email=(email or "").lower(), user_id=user_id)
        contact.save()
        if user_id:
            Identity.objects.create(
                tenant=tenant, contact=contact, kind=Identity.Kind.USER_ID, value=user_id
            )
    elif user_id and not contact.user_id:
        contact.user_id = user_id
        Identity.objects.get_or_create(
            tenant=tenant, kind=Identity.Kind.USER_ID, value=user_id, defaults={"contact": contact}
        )
    contact_apply_fields(contact=contact, fields=fields, source=source)
    contact.save()
    if announce:
        _stage_refresh(tenant, contact)
        contacts_changed_announce(tenant=tenant, contact_ids=[contact.pk])
    return contact, created


def _stage_refresh(tenant: Tenant, contact: Contact) -> None:
    """One contact edited by hand or through the API: its stage follows at once (the answer
    shows it), the change recorded in the edit's transaction (audience/stages.py)."""
    from audience.stages import stages_refresh  # it records through this module

    for change in stages_refresh(tenant=tenant, contact_ids=[contact.pk]):
        contact.lifecycle_stage = change.new


@transaction.atomic
def contact_update(
    *, tenant: Tenant, contact: Contact, fields: dict[str, Any], source: str
) -> Contact:
    """Edit a contact as a person in the UI does: `attributes`, when given, replace the old ones."""
    contact = Contact.objects.select_for_update().get(tenant=tenant, pk=contact.pk)
    if "attributes" in fields:
        contact.attributes = {}
    contact_apply_fields(contact=contact, fields=fields, source=source)
    contact.save()
    _stage_refresh(tenant, contact)
    contacts_changed_announce(tenant=tenant, contact_ids=[contact.pk])
    return contact


def contact_consent_set(
    *, tenant: Tenant, contact: Contact, channel: str, consent: str, source: str
) -> bool:
    """Set `contact`'s consent for `channel` ("email" or "push"), stamped with the time and
    `source`, and announce `contacts_changed` after commit (a "reachable" segment follows).
    Returns whether it changed; `contact` is updated in place."""
    if channel not in CONSENT_CHANNELS:
        raise ValueError(f"no consent for channel {channel!r}")
    field = f"{channel}_consent"
    with transaction.atomic():
        locked = Contact.objects.select_for_update().only(field).get(tenant=tenant, pk=contact.pk)
        if getattr(locked, field) == consent:
            return False
        values = {field: consent, f"{field}_at": now(), f"{field}_source": source[:100]}
        Contact.objects.filter(tenant=tenant, pk=contact.pk).update(**values)
        for name, value in values.items():
            setattr(contact, name, value)
        contacts_changed_announce(tenant=tenant, contact_ids=[contact.pk])
    return True


def contact_apply_fields(*, contact: Contact, fields: dict[str, Any], source: str) -> None:
    """Set CONTACT_EDITABLE fields, merge `attributes`, and record consent changes with their
    time and source."""
    for name in CONTACT_EDITABLE:
        if name in fields:
            value = fields[name]
            if value is None and name not in NULLABLE_FIELDS:
                value = ""  # text fields store "no value" as the empty string
            setattr(contact, name, value)
    if contact.email:
        contact.email = contact.email.lower()
    if "attributes" in fields:
        contact.attributes = {**contact.attributes, **fields["attributes"]}
    stamp = now()
    for channel in CONSENT_CHANNELS:
        value = fields.get(f"{channel}_consent")
        if value and value != getattr(contact, f"{channel}_consent"):
            setattr(contact, f"{channel}_consent", value)
            setattr(contact, f"{channel}_consent_at", stamp)
            setattr(contact, f"{channel}_consent_source", source[:100])


@transaction.atomic
def contact_erase(*, tenant: Tenant, contact: Contact) -> dict[str, int]:
    """GDPR erasure: the contact, its identities, events, their dedupe keys and its orders —
    and, through cascades, everything later capabilities hang on it (messages, memberships).
    Returns what was deleted, by model."""
    events = Event.objects.filter(tenant=tenant, contact_id=contact.pk)
    # A key has no contact column: find the contact's by its events' message ids, before the
    # events go. A message id is personal data too, and without its key a client could not
    # send it again after the erasure.
    keys, _ = EventKey.objects.filter(
        tenant=tenant, message_id__in=events.values("message_id")
    ).delete()
    _, per_model = Contact.objects.filter(tenant=tenant, pk=contact.pk).delete()
    deleted = {label.split(".")[-1].lower(): count for label, count in per_model.items()}
    if keys:
        deleted["eventkey"] = keys
    return deleted


def demo_shop_seed(*, tenant: Tenant) -> int:
    """The demo shop (`make run`): its catalog and shoppers with histories, once per tenant.
    Returns the events stored (0 when the tenant has contacts already)."""
    from audience.demo import seed_shop  # the demo records through this module
    from audience.recommendation_stats import recommendation_stats_refresh

    stored = seed_shop(tenant=tenant)
    if stored:
        # Trending products and co-purchase counts now, not at the next hourly run: the demo
        # shop's "Picked for you" and "Often bought together" are the first thing shown.
        recommendation_stats_refresh(tenant=tenant)
    return stored


def visitor_events_accept(
    *,
    tenant: Tenant,
    user_id: str | None,
    anonymous_id: str | None,
    events: Sequence[tuple[str, dict[str, Any]]],
    source: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Record what Wayfarer served a browser or server visitor (recommendations shown, a search's
    results, a survey answer) as track events, through the ingestion inbox: the same path, identity
    resolution and message-id dedupe as the tracker's own calls, and one insert in the request
    (the ingest worker records them moments later). An unknown visitor becomes a contact, as a
    first /v1/track would make them."""
    from audience.inbox import inbox_accept  # inbox records through this module

    if not (user_id or anonymous_id) or not events:
        return
    received = now()
    calls = [
        Call(
            type="track",
            message_id=f"wf:{source}:{uuid.uuid4()}",
            user_id=user_id or None,
            anonymous_id=anonymous_id or None,
            event=name,
            properties=dict(properties),
            context=dict(context or {}),
            timestamp=received,
        )
        for name, properties in events
    ]
    inbox_accept(tenant=tenant, calls=calls, source=source, received_at=received)


def visitor_settle(*, tenant: Tenant, user_id: str | None, anonymous_id: str | None) -> bool:
    """Record now what the inbox still holds of this visitor (their calls accepted but not yet
    recorded by the ingest worker), so that a decision taken next reads their latest behaviour:
    a banner that follows a segment "within one page view", a recommendation that leaves out what
    was viewed a moment ago. True if anything was recorded."""
    from audience.inbox import inbox_settle

    return inbox_settle(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
