"""Segment-compatible ingestion: POST /v1/identify | track | page | screen | alias | batch.

Existing Segment and RudderStack SDKs work by changing only their host. Authentication is the
tenant's write key as the HTTP Basic user name. Answers: 200 {"success": true} once the messages
are validated and stored in the inbox (the ingest worker records them within moments); 400 with
{"success": false, "code", "message", "index"?, "field"?} naming the bad message; 401 for keys.
"""

from __future__ import annotations

import gzip
import zlib

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.inbox import inbox_accept
from audience.segment_spec import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    SpecError,
    parse_batch,
    parse_call,
)
from tenants.authentication import write_key_from_request
from tenants.models import ApiKey, ApiKeyKind
from tenants.selectors import ApiKeyError, api_key_authenticate


def _error(status: int, code: str, message: str, **extra: object) -> JsonResponse:
    # Segment's error shape, with `code` and `message` at the top: RudderStack's SDK reads them.
    return JsonResponse(
        {"success": False, "code": code, "message": message, **extra}, status=status
    )


def _body(request: HttpRequest, limit: int) -> bytes:
    raw = request.body
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            # Read at most one byte past the limit, so a gzip bomb cannot fill the memory.
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, limit + 1)
        except (zlib.error, gzip.BadGzipFile):
            raise SpecError("The body is not valid gzip.") from None
    if len(raw) > limit:
        raise SpecError(f"The body is larger than {limit} bytes.")
    return raw


def _payload(request: HttpRequest, limit: int) -> tuple[object, int]:
    """The decoded JSON body and its size in bytes (after gzip)."""
    raw = _body(request, limit)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also bad UTF-8, NaN, integers beyond 64 bits
        raise SpecError(f"The body is not valid JSON: {exc}.") from None
    # JSON can only carry a NUL character escaped; PostgreSQL stores none, in text or jsonb.
    if b"\\u0000" in raw and has_nul(payload):
        raise SpecError("The body contains the NUL character (\\u0000), which cannot be stored.")
    return payload, len(raw)


def has_nul(value: object) -> bool:
    """Whether any text in a parsed JSON value holds NUL, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(has_nul, value))
    return False


def _authenticate(request: HttpRequest, payload: object) -> ApiKey:
    """The write key from HTTP Basic auth or, for navigator.sendBeacon (which cannot set headers),
    from the body's `writeKey` field, as analytics.js sends it."""
    if "Authorization" not in request.headers and isinstance(payload, dict):
        raw = payload.get("writeKey")
        if isinstance(raw, str):
            return api_key_authenticate(raw=raw, kind=ApiKeyKind.WRITE)
    return write_key_from_request(request)


def _with_cors(response: HttpResponse) -> HttpResponse:
    # Browsers on the tenant's own sites call these endpoints. No cookies are involved (the write
    # key travels in the request), so any origin may call.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Content-Encoding"
    response["Access-Control-Max-Age"] = "86400"
    return response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def ingest(request: HttpRequest, kind: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return _with_cors(HttpResponse(status=204))
    return _with_cors(_ingest(request, kind))


def _ingest(request: HttpRequest, kind: str) -> HttpResponse:
    body_error: SpecError | None = None
    try:
        payload, size = _payload(request, MAX_BATCH_BYTES if kind == "batch" else MAX_CALL_BYTES)
    except SpecError as exc:
        payload, size, body_error = None, 0, exc
    # Authenticate before judging the payload: strangers learn nothing about it.
    try:
        key = _authenticate(request, payload)
    except ApiKeyError as exc:
        response = _error(401, "unauthorized", str(exc))
        response["WWW-Authenticate"] = 'Basic realm="ingest"'
        return response
    try:
        if body_error is not None:
            raise body_error
        if kind == "batch":
            calls = parse_batch(payload, body_bytes=size)
        else:  # the body's limit is the call's
            calls = [parse_call(payload, type_=kind, check_size=False)]
    except SpecError as exc:
        return _error(400, **exc.as_dict())
    # Accepted: the ingest worker records it shortly (audience/inbox.py), as Segment's API does.
    inbox_accept(tenant=key.tenant, calls=calls, source="http")
    return JsonResponse({"success": True})
