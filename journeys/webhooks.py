"""Journey webhooks: a signed POST to the tenant's endpoint, through the outbound guard.

The signature is Stripe's scheme: `X-Wayfarer-Signature: t=<unix time>,v1=<hex>` where hex is
HMAC-SHA256 of "<t>.<body>" with the tenant's webhook secret (`webhook_secret`). The receiver
recomputes it and refuses old timestamps. `Idempotency-Key` is the same for every try of one
step, so a receiver can drop a repeat (a retry after a timeout, a worker killed after the POST).

The secret is derived from SECRET_KEY and the tenant's public id (HMAC), so there is nothing to
store or leak per tenant; rotating SECRET_KEY rotates every tenant's secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
from django.conf import settings

from core.outbound import OutboundRefused, create_connection, url_check
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


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """The deadline passed: end the call (the reading thread's read ends at once)."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (refused, connection error, timeout)
    error: str = ""
    refused: bool = False  # the guard refused the URL: retrying cannot help


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` through core.outbound (public addresses only, no redirects)."""
    try:
        url_check(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme.lower() == "https":
            context = ssl.create_default_context(cafile=certifi.where())
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port or 443, timeout=TIMEOUT, context=context
            )
        else:  # only a loopback receiver in development (url_check refused any other http)
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=TIMEOUT)
        conn._create_connection = create_connection  # type: ignore[attr-defined]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # TIMEOUT bounds each socket operation, not the call: a receiver that trickles its
        # answer a byte at a time would hold the batch's row locks for as long as it likes.
        # At DEADLINE the socket is shut down, which ends any read in progress.
        # (A read cut short may look like the end of a complete answer: `cut` says it was not.)
        cut = threading.Event()
        watchdog = threading.Timer(DEADLINE, _cut, args=(conn, cut))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request(
                "POST",
                path,
                body=body,
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers},
            )
            response = conn.getresponse()
            response.read(65536)
            status = response.status
        except (OSError, http.client.HTTPException):
            if not cut.is_set():
                raise
        finally:
            watchdog.cancel()
            conn.close()
        if cut.is_set():
            return Answer(0, f"no complete answer within {DEADLINE:g} s")
        return Answer(status)
    except OutboundRefused as exc:
        return Answer(0, f"refused: {exc.reason}", refused=True)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, f"{type(exc).__name__}: {exc}"[:300])
