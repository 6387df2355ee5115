"""Answers of the browser edge: the endpoints that the tenant's own sites and Segment-compatible
SDKs call with a write key (/v1/track and its siblings in audience, /v1/push/… in messaging).

Errors have Segment's shape, {"success": false, "code", "message", "index"?, "field"?}, not the
REST API's (core/api_errors.py): the callers are SDKs written for Segment, and RudderStack's reads
`code` and `message` at the top. Every answer allows any origin.
"""

from __future__ import annotations

import math

from django.http import HttpResponse, JsonResponse

from core.body import BadRequest


def edge_error(
    status: int, code: str, message: str, *, field: str | None = None, index: int | None = None
) -> JsonResponse:
    body: dict[str, object] = {"success": False, "code": code, "message": message}
    if index is not None:
        body["index"] = index
    if field is not None:
        body["field"] = field
    return JsonResponse(body, status=status)


def edge_bad_request(exc: BadRequest) -> JsonResponse:
    return edge_error(400, **exc.as_dict())


def edge_unauthorized(message: str) -> JsonResponse:
    """401 for a missing or wrong write key (SDKs send it as the HTTP Basic user name)."""
    response = edge_error(401, "unauthorized", message)
    response["WWW-Authenticate"] = 'Basic realm="ingest"'
    return response


def edge_throttled(retry_after: float) -> JsonResponse:
    """429 for a write key over its rate (core/throttle.py): Segment's and RudderStack's SDKs
    keep the messages and retry after a while; Retry-After says when (and browsers may read it
    across origins)."""
    seconds = max(1, math.ceil(retry_after))
    response = edge_error(
        429, "throttled", f"Too many requests for this write key; retry in {seconds} s."
    )
    response["Retry-After"] = str(seconds)
    response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


# Every request header the Segment-compatible browser SDKs send, so that their preflights pass:
# analytics.js adds X-Retry-Count to retries; RudderStack's JavaScript SDK sends Accept, the
# AnonymousId (base64) and SentAt on every request and Rsa-* on retries.
ALLOWED_HEADERS = ", ".join(
    (
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "Accept",
        "X-Retry-Count",
        "AnonymousId",
        "SentAt",
        "Rsa-Recovered",
        "Rsa-Retry-Attempt",
        "Rsa-Retry-Reason",
        "Rsa-Since-First-Attempt",
        "Rsa-Since-Last-Attempt",
    )
)


def with_cors(response: HttpResponse, *, methods: str = "POST") -> HttpResponse:
    # No cookies are involved (the write key travels in the request), so any origin — the
    # tenant's shops — may call.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = f"{methods}, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    return response
