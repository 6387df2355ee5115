"""Segment-compatible ingestion: POST /v1/identify | track | page | screen | alias | group |
batch, and their one-letter names (/v1/i, /v1/t, … /v1/b) that Segment's analytics.js uses.

Existing Segment and RudderStack SDKs work by changing only their host. Authentication is the
tenant's write key as the HTTP Basic user name. Answers: 200 {"success": true} once the messages
are validated and stored in the inbox (the ingest worker records them within moments); 400 with
{"success": false, "code", "message", "index"?, "field"?} naming the bad message; 401 for keys;
429 with Retry-After over the write key's rate (core/throttle.py), which the SDKs retry.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.inbox import inbox_accept
from audience.segment_spec import MAX_BATCH_BYTES, MAX_CALL_BYTES, parse_batch, parse_call
from core import throttle
from core.body import BadRequest, body_json
from core.edge import edge_bad_request, edge_throttled, edge_unauthorized, with_cors
from tenants.authentication import write_key_from_request
from tenants.models import ApiKey, ApiKeyKind
from tenants.selectors import ApiKeyError, api_key_authenticate

BATCH_ITEM = re.compile(r"^batch\[(\d+)\]")


def _authenticate(request: HttpRequest, payload: object) -> ApiKey:
    """The write key from HTTP Basic auth or, for navigator.sendBeacon (which cannot set headers),
    from the body's `writeKey` field, as analytics.js sends it."""
    if "Authorization" not in request.headers and isinstance(payload, dict):
        raw = payload.get("writeKey")
        if isinstance(raw, str):
            return api_key_authenticate(raw=raw, kind=ApiKeyKind.WRITE)
    return write_key_from_request(request)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def ingest(request: HttpRequest, kind: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204))
    return with_cors(_ingest(request, kind))


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def sdk_metrics(request: HttpRequest) -> HttpResponse:
    """POST /v1/m: analytics.js's own telemetry (counts of its calls and errors), which it posts
    to its API host every 30 s. Acknowledged and dropped, so it neither fails nor fills logs."""
    return with_cors(HttpResponse(status=204 if request.method == "OPTIONS" else 200))


def _ingest(request: HttpRequest, kind: str) -> HttpResponse:
    body_error: BadRequest | None = None
    try:
        payload, size = body_json(
            request, limit=MAX_BATCH_BYTES if kind == "batch" else MAX_CALL_BYTES
        )
    except BadRequest as exc:
        payload, size, body_error = None, 0, exc
    # Authenticate before judging the payload: strangers learn nothing about it.
    try:
        key = _authenticate(request, payload)
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    if (retry_after := throttle.TRACKING.hit(key.prefix)) is not None:
        return edge_throttled(retry_after)
    try:
        if body_error is not None:
            raise body_error
        if kind == "batch":
            calls = parse_batch(payload, body_bytes=size)
        else:  # the body's limit is the call's
            calls = [parse_call(payload, type_=kind, check_size=False)]
    except BadRequest as exc:  # the body's or the calls' (SpecError)
        if exc.index is None and exc.field and (match := BATCH_ITEM.match(exc.field)):
            exc.index = int(match[1])  # found in the body as a whole: say which call
        return edge_bad_request(exc)
    # Accepted: the ingest worker records it shortly (audience/inbox.py), as Segment's API does.
    inbox_accept(tenant=key.tenant, calls=calls, source="http")
    return JsonResponse({"success": True})
