"""Identity resolution: which contact a call belongs to, merging profiles when an anonymous
visitor turns out to be a known customer. Used inside the ingestion transaction.

Built for batches. `load()` reads every id a batch mentions with one query and locks those
contacts; `resolve()` then works in memory only (new contacts and ids are plain unsaved objects);
`flush()` writes what resolving decided with a few set-based statements. A batch of a thousand
events therefore costs the same handful of round trips as a batch of one.

Concurrency (PostgreSQL): `load()` first takes a transaction-scoped advisory lock per id, in one
sorted order, so two batches that both see a new visitor cannot both create it; then it locks the
contacts it found, in primary-key order, so two batches never change one profile at once (the
cart and the wishlist are read-modify-write).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import Case, Value, When

from audience.bulk import contacts_update, identities_load_locked
from audience.models import Contact, Event, Identity, Order
from audience.segment_spec import Call
from audience.signals import contacts_merged
from tenants.models import Tenant

Kind = Identity.Kind
MAX_RECENTLY_VIEWED = 20
# What resolving and applying calls may change on a stored contact.
SAVED_FIELDS = [
    f.name
    for f in Contact._meta.concrete_fields
    if f.name not in ("id", "tenant", "public_id") and not f.generated
]


def call_identities(call: Call) -> Iterable[tuple[str, str]]:
    """Every (kind, value) a call may resolve through."""
    for value in (call.user_id, call.previous_id):
        if value:
            yield Kind.USER_ID, value
    for value in (call.anonymous_id, call.previous_id):
        if value:
            yield Kind.ANONYMOUS_ID, value


def _lock_key(tenant_id: int, value: str) -> int:
    # A signed 64-bit number, as pg_advisory_xact_lock takes. A collision only makes two batches
    # wait for each other; it never mixes their data.
    digest = hashlib.blake2b(f"{tenant_id}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_identities(tenant: Tenant, keys: Iterable[tuple[str, str]]) -> None:
    """Serialise concurrent transactions that mention the same ids, until they commit. SQLite
    needs nothing: it has one writer at a time."""
    if connection.vendor != "postgresql":
        return
    lock_keys = sorted({_lock_key(tenant.pk, value) for _, value in keys})
    if lock_keys:
        with connection.cursor() as cursor:
            # The elements come out in the document's (sorted) order, so every transaction
            # locks in one order.
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k::bigint))"
                " FROM jsonb_array_elements_text(%s::jsonb) AS k",
                [json.dumps(lock_keys)],
            )


class IdentityResolver:
    """Resolves the calls of one tenant to contacts, within one transaction."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._by_id: dict[tuple[str, str], Contact] = {}
        # Keyed by the Python object: a new contact has no primary key until flush().
        self._merged_into: dict[int, Contact] = {}
        self._stored: list[Contact] = []  # loaded from the database (and locked)
        self._before: dict[int, list[object]] = {}
        self._new_contacts: list[Contact] = []
        self._new_identities: list[tuple[str, str, Contact]] = []
        self._absorbed: list[Contact] = []  # stored contacts merged into another, to delete

    def load(self, calls: Iterable[Call]) -> None:
        """Read (and lock) every id the calls mention. Call once, before resolve()."""
        keys = {key for m in calls for key in call_identities(m)}
        if not keys:
            return
        lock_identities(self.tenant, keys)
        contacts: dict[int, Contact] = {}
        for kind, value, contact in identities_load_locked(tenant_id=self.tenant.pk, keys=keys):
            self._by_id[(kind, value)] = contacts[contact.pk] = contact
        self._stored = list(contacts.values())
        # What they were, to write back only what changed (values are replaced, never mutated).
        self._before = {id(c): [getattr(c, name) for name in SAVED_FIELDS] for c in self._stored}

    # --- in memory ----------------------------------------------------------------------------
    def _lookup(self, kind: str, value: str | None) -> Contact | None:
        contact = self._by_id.get((kind, value)) if value else None
        return None if contact is None else self.canonical(contact)

    def canonical(self, contact: Contact) -> Contact:
        """The contact that `contact` was merged into (itself if it was not)."""
        while id(contact) in self._merged_into:
            contact = self._merged_into[id(contact)]
        return contact

    def _attach(self, contact: Contact, kind: str, value: str) -> None:
        self._by_id[(kind, value)] = contact
        self._new_identities.append((kind, value, contact))
        if kind == Kind.USER_ID and not contact.user_id:
            contact.user_id = value

    def _create(self, *, user_id: str | None, anonymous_id: str | None) -> Contact:
        contact = Contact(tenant=self.tenant, user_id=user_id or "")
        self._new_contacts.append(contact)
        if user_id:
            self._attach(contact, Kind.USER_ID, user_id)
        if anonymous_id:
            self._attach(contact, Kind.ANONYMOUS_ID, anonymous_id)
        return contact

    def merge(self, source: Contact, target: Contact) -> Contact:
        """Fold `source` into `target`: what `target` does not know yet. Its events and ids move
        in flush()."""
        for field in ("email", "phone", "first_name", "last_name", "timezone", "locale"):
            if not getattr(target, field) and getattr(source, field):
                setattr(target, field, getattr(source, field))
        if target.birthday_month is None and source.birthday_month is not None:
            target.birthday_month, target.birthday_day, target.birth_year = (
                source.birthday_month,
                source.birthday_day,
                source.birth_year,
            )
        target.attributes = {**source.attributes, **target.attributes}
        for channel in ("email", "push"):
            if getattr(target, f"{channel}_consent") == "unknown":
                for suffix in ("_consent", "_consent_at", "_consent_source"):
                    setattr(target, channel + suffix, getattr(source, channel + suffix))
        known = {item.get("sku") for item in target.cart}
        target.cart = target.cart + [i for i in source.cart if i.get("sku") not in known]
        target.wishlist = target.wishlist + [s for s in source.wishlist if s not in target.wishlist]
        target.recently_viewed = list(
            dict.fromkeys(target.recently_viewed + source.recently_viewed)
        )[:MAX_RECENTLY_VIEWED]
        target.created_at = min(target.created_at, source.created_at)
        if source.last_seen_at and (
            target.last_seen_at is None or source.last_seen_at > target.last_seen_at
        ):
            target.last_seen_at = source.last_seen_at
        self._merged_into[id(source)] = target
        if source.pk is not None:
            self._absorbed.append(source)
        return target

    def resolve(self, call: Call) -> Contact:
        if call.type == "alias":
            return self._resolve_alias(call)
        user_id, anonymous_id = call.user_id, call.anonymous_id
        by_user = self._lookup(Kind.USER_ID, user_id)
        by_anon = self._lookup(Kind.ANONYMOUS_ID, anonymous_id)
        if user_id is None:
            return by_anon or self._create(user_id=None, anonymous_id=anonymous_id)
        if by_user is not None:
            if anonymous_id is None or by_anon is by_user:
                return by_user
            if by_anon is None:
                self._attach(by_user, Kind.ANONYMOUS_ID, anonymous_id)
                return by_user
            if by_anon.user_id and by_anon.user_id != user_id:
                return by_user  # a shared browser: that anonymous id is someone else's
            return self.merge(by_anon, by_user)
        if by_anon is not None and not (by_anon.user_id and by_anon.user_id != user_id):
            self._attach(by_anon, Kind.USER_ID, user_id)  # the visitor tells us who they are
            return by_anon
        return self._create(user_id=user_id, anonymous_id=anonymous_id if by_anon is None else None)

    def _resolve_alias(self, call: Call) -> Contact:
        assert call.user_id is not None and call.previous_id is not None
        target = self._lookup(Kind.USER_ID, call.user_id)
        previous = self._lookup(Kind.USER_ID, call.previous_id) or self._lookup(
            Kind.ANONYMOUS_ID, call.previous_id
        )
        if target is None and previous is None:
            return self._create(user_id=call.user_id, anonymous_id=call.previous_id)
        if target is None:
            assert previous is not None
            self._attach(previous, Kind.USER_ID, call.user_id)
            return previous
        if previous is None:
            self._attach(target, Kind.ANONYMOUS_ID, call.previous_id)
            return target
        return target if previous is target else self.merge(previous, target)

    # --- writes --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every contact handed out, in its final state (call it once, after every call
        was applied): insert the new ones, move merged contacts' events and ids to their target
        and delete them, update the others, store the new ids."""
        Contact.objects.bulk_create(
            [c for c in self._new_contacts if id(c) not in self._merged_into]
        )
        if self._absorbed:
            self._move_absorbed()
        changed_fields: set[str] = set()
        changed: list[Contact] = []
        for contact in self._stored:
            if id(contact) in self._merged_into:
                continue
            before = self._before[id(contact)]
            fields = {
                n for n, old in zip(SAVED_FIELDS, before, strict=True) if getattr(contact, n) != old
            }
            if fields:
                changed.append(contact)
                changed_fields |= fields
        contacts_update(
            tenant_id=self.tenant.pk,
            contacts=changed,
            fields=[name for name in SAVED_FIELDS if name in changed_fields],
        )
        Identity.objects.bulk_create(
            [
                Identity(tenant=self.tenant, contact=self.canonical(c), kind=kind, value=value)
                for kind, value, c in self._new_identities
            ]
        )
        self._new_contacts, self._stored, self._new_identities = [], [], []

    def _move_absorbed(self) -> None:
        sources_by_target: dict[int, list[int]] = defaultdict(list)
        for source in self._absorbed:
            sources_by_target[self.canonical(source).pk].append(source.pk)
        merged = {pk: target for target, pks in sources_by_target.items() for pk in pks}
        _point_at_targets(Event, tenant_id=self.tenant.pk, merged=merged)
        _point_at_targets(Identity, tenant_id=self.tenant.pk, merged=merged)
        _point_at_targets(Order, tenant_id=self.tenant.pk, merged=merged)
        # Apps above move what they hang on a contact before it goes (still inside this
        # transaction), so a merge never cascades their rows away.
        contacts_merged.send(sender=None, tenant=self.tenant, merged=merged)
        Contact.objects.filter(tenant=self.tenant, pk__in=list(merged)).delete()
        self._absorbed = []


def _point_at_targets(
    model: type[Event] | type[Identity] | type[Order], *, tenant_id: int, merged: dict[int, int]
) -> None:
    """Move the tenant's `model` rows of each merged contact (pk → target pk) to its target, in
    one statement however many contacts a batch merged."""
    if connection.vendor != "postgresql":
        model.objects.filter(tenant_id=tenant_id, contact_id__in=list(merged)).update(
            contact_id=Case(*(When(contact_id=pk, then=Value(to)) for pk, to in merged.items()))
        )
        return
    # Not a CASE there: it tests its branches one by one for every row moved (an absorbed
    # visitor's whole history), where a join finds each row's target with one hash probe.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} AS r SET contact_id = m.target"
            " FROM jsonb_to_recordset(%s::jsonb) AS m(source bigint, target bigint)"
            " WHERE r.tenant_id = %s AND r.contact_id = m.source",
            [json.dumps([{"source": pk, "target": to} for pk, to in merged.items()]), tenant_id],
        )
