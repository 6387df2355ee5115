"""Journey webhooks: a signed POST to the tenant's endpoint, through the outbound guard.

The signature is Stripe's scheme: `X-Wayfarer-Signature: t=<unix time>,v1=<hex>` where hex is
HMAC-SHA256 of "<t>.<body>" with the tenant's webhook secret (`webhook_secret`). The receiver
recomputes it and refuses old timestamps. `Idempotency-Key` is the same for every try of one
step, so a receiver can drop a repeat (a retry after a timeout, a worker killed after the POST).

The secret is derived from SECRET_KEY and the tenant's public id (HMAC), so there is nothing to
store or leak per tenant; rotating SECRET_KEY rotates every tenant's secret.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from core.outbound import Answer, post_json
from tenants.models import Tenant

TIMEOUT = 10.0  # seconds for connecting and for each read of the answer
DEADLINE = 15.0  # seconds for the whole call: the step runs inside its batch's transaction
USER_AGENT = "Wayfarer-Journeys/1"


def webhook_secret(*, tenant: Tenant) -> str:
    """The tenant's webhook signing secret (shown to the tenant to verify signatures)."""
    key = hmac.new(
        settings.SECRET_KEY.encode(), f"journey-webhook:{tenant.public_id}".encode(), "sha256"
    )
    return f"whsec_{key.hexdigest()[:48]}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` through core.outbound (public addresses only, no redirects), within
    DEADLINE: the step runs inside its batch's transaction."""
    return post_json(url, body, headers, user_agent=USER_AGENT, timeout=TIMEOUT, deadline=DEADLINE)
