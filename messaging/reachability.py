"""Who can receive a channel's messages. PLACEHOLDER in the wt-registry branch: the segment
condition kind "reachable" (messaging/segment_conditions.py) calls these two functions; the full
definition (consent, the tenant's opt-in setting, suppression list, active push subscriptions)
comes from another branch with exactly these signatures. Until then they answer as segments did:
email needs an address whose consent is not revoked; push needs consent granted."""

from __future__ import annotations

from django.db.models import Q

from audience.models import Consent, Contact
from tenants.models import Tenant


def reachable_q(*, tenant: Tenant, channel: str, category: str = "marketing") -> Q:
    """The tenant's contacts `channel` can reach, as a filter over audience.Contact."""
    if channel == "email":
        return ~Q(email="") & ~Q(email_consent=Consent.REVOKED)
    return Q(push_consent=Consent.GRANTED)


def contact_reachable(
    *, tenant: Tenant, contact: Contact, channel: str, category: str = "marketing"
) -> bool:
    """Whether `channel` can reach `contact` (the same answer as `reachable_q`)."""
    if channel == "email":
        return contact.email != "" and contact.email_consent != Consent.REVOKED
    return contact.push_consent == Consent.GRANTED
