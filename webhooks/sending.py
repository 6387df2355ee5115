"""Sending webhook messages: claim, sign, POST through the outbound guard, settle.

1. `claim()` moves due messages pending → sending in one transaction (`FOR UPDATE SKIP LOCKED`),
   stamping a claim token: any number of workers share the queue, none takes a message another
   holds, so a task run twice (or a second beat) sends nothing twice.
2. Each message is signed as the Standard Webhooks spec says (`webhook-id`, `webhook-timestamp`,
   `webhook-signature`, with the `standardwebhooks` library) and POSTed through core/outbound.py
   (public https addresses only, no redirects), with short timeouts.
3. Its outcome is written only where the claim token still matches: a 2xx → succeeded; anything
   else → pending again after the next delay of `SCHEDULE` (with jitter), or failed once
   `MAX_ATTEMPTS` attempts since its last replay have failed. A URL the guard refuses fails at once.

A worker killed mid-send leaves messages in `sending`; `recover()` puts those whose lease ran
out back in the queue. Delivery is therefore at least once (as every webhook sender's is): the
`webhook-id` is the same on every attempt, so a receiver drops a repeat.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.db import transaction
from django.db.models import F
from django.utils.timezone import now
from standardwebhooks.webhooks import Webhook

from core.outbound import Answer, post_json
from webhooks.models import WebhookEndpoint, WebhookMessage

log = logging.getLogger(__name__)

# After the 1st, 2nd, … failed attempt, the next one comes this many seconds later (the
# Standard Webhooks spec's example schedule); the first attempt is immediate.
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.1  # each delay is stretched or shrunk by up to 10 %, so retries do not arrive in step
TIMEOUT = 5.0  # seconds to connect and for each read of the answer
DEADLINE = 10.0  # seconds for the whole request: a receiver that trickles is cut off
LEASE_SECONDS = 120  # a message claimed (or renewed) longer ago than this was abandoned
USER_AGENT = "Wayfarer-Webhooks/1"
ROTATION_GRACE = timedelta(hours=24)  # a rotated secret still signs this long (docs/webhooks.md)


@dataclass
class SendReport:
    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0
    more: bool = False


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` through core.outbound (public addresses only, no redirects)."""
    answer = post_json(
        url, body, headers, user_agent=USER_AGENT, timeout=TIMEOUT, deadline=DEADLINE
    )
    if answer.refused:
        # The reason can name a private address the host resolved to: the server log keeps it,
        # the log every member of the team can read says only why in general.
        log.info("webhook to %s refused: %s", url, answer.reason)
        return Answer(0, "refused: the URL is not a public https address", refused=True)
    return answer


def signed_headers(
    endpoint: WebhookEndpoint, message: WebhookMessage, body: bytes, at: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers; during a rotation's grace period the signature header
    holds a signature with the new secret and one with the previous (space-separated)."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > at:
        secrets.append(endpoint.previous_secret)
    signatures = [Webhook(s).sign(message.webhook_id, at, body) for s in secrets]
    return {
        "webhook-id": message.webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def body_of(message: WebhookMessage) -> bytes:
    return orjson.dumps(message.payload)


def retry_delay(failed_attempts: int) -> timedelta | None:
    """How long after the `failed_attempts`-th failure (since the last replay) to try again;
    None: give up."""
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE[failed_attempts - 1]
    return timedelta(seconds=base * random.uniform(1 - JITTER, 1 + JITTER))


def claim(*, limit: int, token: uuid.UUID, at: datetime) -> list[WebhookMessage]:
    """Take up to `limit` due messages for this worker."""
    with transaction.atomic():
        ids = list(
            WebhookMessage.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookMessage.Status.PENDING, next_attempt_at__lte=at)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        WebhookMessage.objects.filter(pk__in=ids).update(
            status=WebhookMessage.Status.SENDING,
            claim_token=token,
            claimed_at=at,
            attempts=F("attempts") + 1,
            updated_at=at,
        )
    return list(
        WebhookMessage.objects.filter(pk__in=ids, claim_token=token)
        .select_related("endpoint")
        .order_by("next_attempt_at", "pk")
    )


def recover(*, at: datetime | None = None) -> int:
    """Put messages whose worker stopped mid-send back in the queue (sent again: at least once)."""
    at = at or now()
    return WebhookMessage.objects.filter(
        status=WebhookMessage.Status.SENDING,
        claimed_at__lt=at - timedelta(seconds=LEASE_SECONDS),
    ).update(
        status=WebhookMessage.Status.PENDING,
        claim_token=None,
        next_attempt_at=at,
        updated_at=at,
        last_error="requeued: the worker that claimed it stopped",
    )


def message_attempt(message: WebhookMessage, token: uuid.UUID) -> str:
    """Send one claimed message and write its outcome (where it is still ours); returns the
    status it ended in."""
    endpoint = message.endpoint
    at = now()
    # Renew the lease right before the POST, and only if the message is still ours: recovery
    # may have taken back a message that waited behind slow receivers in this batch.
    if not WebhookMessage.objects.filter(pk=message.pk, claim_token=token).update(claimed_at=at):
        return WebhookMessage.Status.PENDING
    if not endpoint.enabled:
        answer = Answer(0, "the endpoint is disabled", refused=True)
    else:
        body = body_of(message)
        answer = post(endpoint.url, body, signed_headers(endpoint, message, body, at))
    done = now()
    fields: dict[str, object] = {
        "claim_token": None,
        "last_attempt_at": at,
        "last_response_code": answer.status or None,
        "updated_at": done,
    }
    if 200 <= answer.status < 300:
        fields.update(
            status=WebhookMessage.Status.SUCCEEDED,
            succeeded_at=done,
            next_attempt_at=None,
            last_error="",
        )
    else:
        error = answer.error or f"the endpoint answered {answer.status}"
        delay = (
            None
            if answer.refused
            else retry_delay(message.attempts - message.attempts_before_replay)
        )
        if delay is None:
            fields.update(status=WebhookMessage.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(status=WebhookMessage.Status.PENDING, next_attempt_at=done + delay)
        fields["last_error"] = error[:300]
    WebhookMessage.objects.filter(pk=message.pk, claim_token=token).update(**fields)
    return str(fields["status"])


def messages_send(*, batch_size: int = 10, seconds: float = 20.0) -> SendReport:
    """Send due messages until none are due or `seconds` have passed."""
    report = SendReport(recovered=recover())
    deadline = time.monotonic() + seconds
    while True:
        token = uuid.uuid4()
        batch = claim(limit=batch_size, token=token, at=now())
        report.claimed += len(batch)
        for message in batch:
            outcome = message_attempt(message, token)
            if outcome == WebhookMessage.Status.SUCCEEDED:
                report.succeeded += 1
            elif outcome == WebhookMessage.Status.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
        if len(batch) < batch_size:
            break
        if time.monotonic() > deadline:
            report.more = True
            break
    return report
