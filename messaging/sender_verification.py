"""A team's From address is used only once someone at that address agreed to it.

Changing the address (`services.sender_identity_update`) leaves it pending and emails it a
link, /m/s/<token>. The token is signed (its own salt): it names the tenant, the address and
the request it answers, and expires after SENDER_LINK_MAX_AGE. Following the link and
confirming makes the address the team's From; until then every message keeps the From it had
(the site's own address if none). So nothing is ever sent from an address nobody there agreed
to: the rule of mature ESPs (Mailchimp, Customer.io, Braze refuse unverified senders), but
without stopping the team's mail while it waits.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from core import rls
from core.throttle import once_per
from messaging.models import SenderIdentity
from tenants.models import Tenant

SALT = "messaging.sender_verification"
SENDER_LINK_MAX_AGE = timedelta(days=3)
RESEND_INTERVAL_SECONDS = 60  # at most one link a minute to an address a team typed


def _payload(identity: SenderIdentity, tenant: Tenant) -> dict[str, str]:
    requested = identity.pending_sender_requested_at
    return {
        "t": str(tenant.public_id),
        "a": identity.pending_sender_email.lower(),
        "r": requested.isoformat() if requested else "",
    }


def sender_email_link(*, tenant: Tenant, identity: SenderIdentity) -> str:
    token = signing.dumps(_payload(identity, tenant), salt=SALT, compress=True)
    return f"{settings.SITE_URL}{reverse('sender_email_confirm', args=[token])}"


def sender_email_verification_send(*, tenant: Tenant, identity: SenderIdentity) -> None:
    """Email the pending From address the link that confirms it (from the site's address: the
    team's own is what is being asked)."""
    context = {
        "tenant": tenant,
        "address": identity.pending_sender_email,
        "url": sender_email_link(tenant=tenant, identity=identity),
        "days": SENDER_LINK_MAX_AGE.days,
    }
    subject = render_to_string("messaging/sender_email_verification_subject.txt", context)
    body = render_to_string("messaging/sender_email_verification_email.txt", context)
    send_mail(" ".join(subject.split()), body, None, [identity.pending_sender_email])


def sender_email_verification_resend(*, tenant: Tenant, identity: SenderIdentity) -> bool:
    """The link again (at most one a minute). Returns whether it was sent."""
    if not identity.pending_sender_email:
        return False
    if not once_per(f"wf:messaging:sender-link:{tenant.pk}", RESEND_INTERVAL_SECONDS):
        return False
    sender_email_verification_send(tenant=tenant, identity=identity)
    return True


def sender_email_link_check(*, token: str) -> SenderIdentity | None:
    """The sender identity (tenant loaded) whose pending address `token` confirms; None for a
    forged, expired or superseded link (the team changed or cancelled the address since)."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=SENDER_LINK_MAX_AGE)
    except signing.BadSignature:  # forged, cut short, or expired (SignatureExpired)
        return None
    if not isinstance(payload, dict) or not payload.get("a") or not payload.get("t"):
        return None
    # The edge of the link's page: the signed token names the tenant, looked up across tenants,
    # then the connection is scoped to it (row-level security, core/rls.py).
    with rls.edge_lookup():
        identity = (
            SenderIdentity.objects.select_related("tenant")
            .filter(tenant__public_id=str(payload["t"]))
            .first()
        )
        if identity is None or _payload(identity, identity.tenant) != payload:
            return None
        rls.tenant_set(identity.tenant_id)
    return identity


def sender_email_confirm(*, token: str) -> SenderIdentity | None:
    """Make the address a valid link was sent to the team's From; None for an invalid link."""
    with transaction.atomic():
        identity = sender_email_link_check(token=token)
        if identity is None:
            return None
        locked = SenderIdentity.objects.select_for_update().get(pk=identity.pk)
        if _payload(locked, identity.tenant) != _payload(identity, identity.tenant):
            return None  # changed in between
        locked.sender_email = locked.pending_sender_email
        locked.pending_sender_email = ""
        locked.pending_sender_requested_at = None
        locked.save(
            update_fields=["sender_email", "pending_sender_email", "pending_sender_requested_at"]
        )
    locked.tenant = identity.tenant
    return locked
