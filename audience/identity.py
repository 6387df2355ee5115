"""Identity resolution: which contact a message belongs to, merging profiles when an anonymous
visitor turns out to be a known customer. Used inside the ingestion transaction."""

from __future__ import annotations

from audience.models import Contact, Event, Identity
from audience.segment_spec import Message
from tenants.models import Tenant

Kind = Identity.Kind
MAX_RECENTLY_VIEWED = 20


class IdentityResolver:
    """Resolves messages of one tenant to contacts, caching what it has seen within one call so a
    batch of a thousand events of one visitor costs one lookup."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._by_id: dict[tuple[str, str], Contact] = {}
        self._absent: set[tuple[str, str]] = set()  # ids known not to exist (yet)
        # One Python object per contact, so changes made for one message are seen by the next.
        self._contacts: dict[int, Contact] = {}
        # Keyed by the Python object: deleting a merged contact sets its pk to None.
        self._merged_into: dict[int, Contact] = {}

    def prefetch(self, messages: list[Message]) -> None:
        """Load every id the messages mention with one query, so resolving costs no lookups."""
        wanted: set[tuple[str, str]] = set()
        for m in messages:
            for value in (m.user_id, m.previous_id):
                if value:
                    wanted.add((Kind.USER_ID, value))
            for value in (m.anonymous_id, m.previous_id):
                if value:
                    wanted.add((Kind.ANONYMOUS_ID, value))
        wanted -= self._by_id.keys()
        if not wanted:
            return
        found = Identity.objects.select_related("contact").filter(
            tenant=self.tenant, value__in={value for _, value in wanted}
        )
        for identity in found:
            self._by_id[(identity.kind, identity.value)] = self._one(identity.contact)
        self._absent |= wanted - self._by_id.keys()

    # --- lookups -----------------------------------------------------------------------------
    def _lookup(self, kind: str, value: str | None) -> Contact | None:
        if value is None:
            return None
        key = (kind, value)
        if key in self._absent:
            return None
        if key not in self._by_id:
            identity = (
                Identity.objects.select_related("contact")
                .filter(tenant=self.tenant, kind=kind, value=value)
                .first()
            )
            if identity is None:
                self._absent.add(key)
                return None
            self._by_id[key] = self._one(identity.contact)
        return self.canonical(self._by_id[key])

    def _one(self, contact: Contact) -> Contact:
        return self._contacts.setdefault(contact.pk, contact)

    def canonical(self, contact: Contact) -> Contact:
        """The contact that `contact` was merged into (itself if it was not)."""
        while id(contact) in self._merged_into:
            contact = self._merged_into[id(contact)]
        return contact

    # --- writes --------------------------------------------------------------------------------
    def _attach(self, contact: Contact, kind: str, value: str) -> None:
        Identity.objects.create(tenant=self.tenant, contact=contact, kind=kind, value=value)
        self._by_id[(kind, value)] = contact
        self._absent.discard((kind, value))
        if kind == Kind.USER_ID and not contact.user_id:
            contact.user_id = value
            contact.save(update_fields=["user_id"])

    def _create(self, *, user_id: str | None, anonymous_id: str | None) -> Contact:
        contact = self._one(Contact.objects.create(tenant=self.tenant, user_id=user_id or ""))
        if user_id:
            self._attach(contact, Kind.USER_ID, user_id)
        if anonymous_id:
            self._attach(contact, Kind.ANONYMOUS_ID, anonymous_id)
        return contact

    def merge(self, source: Contact, target: Contact) -> Contact:
        """Fold `source` into `target`: its events, ids and what `target` does not know yet."""
        Event.objects.filter(tenant=self.tenant, contact=source).update(contact=target)
        Identity.objects.filter(tenant=self.tenant, contact=source).update(contact=target)
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
        target.save()
        self._merged_into[id(source)] = target
        source.delete()
        return target

    def resolve(self, message: Message) -> Contact:
        if message.type == "alias":
            return self._resolve_alias(message)
        user_id, anonymous_id = message.user_id, message.anonymous_id
        by_user = self._lookup(Kind.USER_ID, user_id)
        by_anon = self._lookup(Kind.ANONYMOUS_ID, anonymous_id)
        if user_id is None:
            return by_anon or self._create(user_id=None, anonymous_id=anonymous_id)
        if by_user is not None:
            if anonymous_id is None or by_anon == by_user:
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

    def _resolve_alias(self, message: Message) -> Contact:
        assert message.user_id is not None and message.previous_id is not None
        target = self._lookup(Kind.USER_ID, message.user_id)
        previous = self._lookup(Kind.USER_ID, message.previous_id) or self._lookup(
            Kind.ANONYMOUS_ID, message.previous_id
        )
        if target is None and previous is None:
            return self._create(user_id=message.user_id, anonymous_id=message.previous_id)
        if target is None:
            assert previous is not None
            self._attach(previous, Kind.USER_ID, message.user_id)
            return previous
        if previous is None:
            self._attach(target, Kind.ANONYMOUS_ID, message.previous_id)
            return target
        return target if previous == target else self.merge(previous, target)
