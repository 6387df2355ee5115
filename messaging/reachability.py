"""Whether a contact can be reached by email or by push: the one definition.

The segment builder's "can receive" condition (`reachable_q`, a filter compiled into the
segment's single SQL query), the sender's policy (`reachability_load` + `Reachability.reason`
for a claimed batch) and the preference centre (`Reachability` for one contact) all ask here.
`reachable_q` says in SQL what `unreachable_reason` says in Python; the property test
(tests/messaging/test_reachability_property.py) proves the readers agree.

A contact of the tenant is reachable on a channel when
- email: it has an address, and that address is not on the tenant's suppression list (bounces,
  complaints, added by hand; stored lower-cased, so compared with the address lower-cased);
- push: it has at least one active push subscription with the tenant;
and, for marketing only (transactional messages such as receipts ignore consent):
- its consent for the channel is not revoked, and
- when the tenant requires an opt-in (SendingPolicy.require_opt_in), it is granted: unknown
  counts as no.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower

from audience.models import Consent, Contact
from messaging.models import Category, Channel, PushSubscription, SendingPolicy, Suppression
from messaging.selectors import sending_policy_get
from tenants.models import Tenant

CHANNELS = (Channel.EMAIL, Channel.PUSH)

# Why a contact cannot be reached: the sender records them on skipped deliveries, so keep them.
NO_EMAIL = "no email address"
SUPPRESSED = "address suppressed (bounce or complaint)"
NO_PUSH = "no active push subscription"
UNSUBSCRIBED = "unsubscribed"
NO_OPT_IN = "no opt-in"
CONSENT_REASONS = frozenset({UNSUBSCRIBED, NO_OPT_IN})
REASONS = frozenset({NO_EMAIL, SUPPRESSED, NO_PUSH, *CONSENT_REASONS})


def _channel(channel: str) -> Channel:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return Channel(channel)


def _consent_field(channel: str) -> str:
    return f"{_channel(channel)}_consent"


def consent_reason(consent: str, *, category: str, require_opt_in: bool) -> str | None:
    """Why a contact's consent on a channel keeps a message of `category` from it, or None."""
    if category != Category.MARKETING:
        return None
    if consent == Consent.REVOKED:
        return UNSUBSCRIBED
    if require_opt_in and consent != Consent.GRANTED:
        return NO_OPT_IN
    return None


def unreachable_reason(
    contact: Contact,
    channel: str,
    category: str = Category.MARKETING,
    *,
    require_opt_in: bool,
    suppressed: bool,
    has_active_push: bool,
) -> str | None:
    """Why `contact` cannot be reached on `channel` for a message of `category`, or None when
    it can. Pure: the caller has looked up whether the contact's address is suppressed and
    whether it has an active push subscription (`reachability_load` does, for a whole batch)."""
    consent = getattr(contact, _consent_field(channel))
    if channel == Channel.EMAIL:
        if not contact.email:
            return NO_EMAIL
        if suppressed:
            return SUPPRESSED
    elif not has_active_push:
        return NO_PUSH
    return consent_reason(consent, category=category, require_opt_in=require_opt_in)


def reachable_q(*, tenant: Tenant, channel: str, category: str = Category.MARKETING) -> Q:
    """A filter over the tenant's `Contact` rows: those reachable on `channel`.

    Correlated EXISTS on the suppression list and the push subscriptions (each served by an
    index starting with tenant), no list of ids: it composes into one query (a segment's) and
    stays fast on millions of contacts. The tenant's opt-in setting is a subquery too (run
    once per statement): compiling reads nothing, and a changed setting counts at once.
    Apply it to the tenant's contacts (`Contact.objects.filter(tenant=tenant)`); negated, it
    selects exactly the others."""
    field = _consent_field(channel)
    if channel == Channel.EMAIL:
        suppressed = Suppression.objects.filter(tenant=tenant, address=Lower(OuterRef("email")))
        q = ~Q(email="") & ~Q(Exists(suppressed))
    else:
        subscribed = PushSubscription.objects.filter(
            tenant=tenant, contact=OuterRef("pk"), active=True
        )
        q = Q(Exists(subscribed))
    if category == Category.MARKETING:
        opt_in_required = SendingPolicy.objects.filter(tenant=tenant, require_opt_in=True)
        q &= Q(**{field: Consent.GRANTED}) | (
            ~Q(**{field: Consent.REVOKED}) & ~Q(Exists(opt_in_required))
        )
    return q


@dataclass(frozen=True)
class Reachability:
    """What reachability is judged on for a set of one tenant's contacts, loaded at once."""

    require_opt_in: bool
    suppressed: frozenset[str]  # the contacts' addresses on the suppression list, lower-cased
    push_subscribed: frozenset[int]  # pks of the contacts with an active push subscription
    channels: frozenset[str] = frozenset(CHANNELS)  # what was loaded: only these can be judged

    def reason(
        self, contact: Contact, channel: str, category: str = Category.MARKETING
    ) -> str | None:
        """Why `contact` cannot be reached on `channel`, or None when it can."""
        if channel not in self.channels:
            raise ValueError(f"{channel!r} was not loaded")
        return unreachable_reason(
            contact,
            channel,
            category,
            require_opt_in=self.require_opt_in,
            suppressed=bool(contact.email) and contact.email.lower() in self.suppressed,
            has_active_push=contact.pk in self.push_subscribed,
        )

    def consents(self, contact: Contact, channel: str) -> bool:
        """Whether the contact's consent alone lets marketing through on `channel` (what it
        chose, as the tenant's opt-in setting reads it; the address or subscription aside)."""
        consent = getattr(contact, _consent_field(channel))
        return (
            consent_reason(consent, category=Category.MARKETING, require_opt_in=self.require_opt_in)
            is None
        )


def reachability_load(
    *,
    tenant: Tenant,
    contacts: Iterable[Contact],
    channels: Iterable[str] = CHANNELS,
    require_opt_in: bool | None = None,
) -> Reachability:
    """The facts to judge `contacts` (the tenant's) on `channels`, in at most three queries
    whatever their number: the tenant's policy (unless `require_opt_in` is given), the
    suppressed ones among their addresses (for email), their active push subscriptions (for
    push)."""
    contacts = list(contacts)
    if any(c.tenant_id != tenant.pk for c in contacts):
        raise ValueError("a contact of another tenant")
    wanted = {_channel(channel) for channel in channels}
    if require_opt_in is None:
        require_opt_in = sending_policy_get(tenant=tenant).require_opt_in
    suppressed: frozenset[str] = frozenset()
    addresses = {c.email.lower() for c in contacts if c.email}
    if Channel.EMAIL in wanted and addresses:
        found = Suppression.objects.filter(tenant=tenant, address__in=addresses)
        suppressed = frozenset(found.values_list("address", flat=True))
    push_subscribed: frozenset[int] = frozenset()
    if Channel.PUSH in wanted and contacts:
        active = PushSubscription.objects.filter(
            tenant=tenant, contact_id__in={c.pk for c in contacts}, active=True
        )
        push_subscribed = frozenset(active.values_list("contact_id", flat=True))
    return Reachability(
        require_opt_in=require_opt_in,
        suppressed=suppressed,
        push_subscribed=push_subscribed,
        channels=frozenset(wanted),
    )


def contact_unreachable_reason(
    *, tenant: Tenant, contact: Contact, channel: str, category: str = Category.MARKETING
) -> str | None:
    """Why the tenant's `contact` cannot be reached on `channel` now, or None when it can."""
    facts = reachability_load(tenant=tenant, contacts=[contact], channels=[channel])
    return facts.reason(contact, channel, category)


def contact_reachable(
    *, tenant: Tenant, contact: Contact, channel: str, category: str = Category.MARKETING
) -> bool:
    """Whether the tenant's `contact` can be reached on `channel` now (one contact, in Python:
    a journey branching on it); agrees with `reachable_q`."""
    reason = contact_unreachable_reason(
        tenant=tenant, contact=contact, channel=channel, category=category
    )
    return reason is None
