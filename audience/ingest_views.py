"""Segment-compatible ingestion: POST /v1/identify | track | page | screen | alias | batch.

Existing Segment and RudderStack SDKs work by changing only their host. Authentication is the
tenant's write key as the HTTP Basic user name. Answers: 200 {"success": true}; 400 with
{"error": {"code", "message", "index"?, "field"?}} naming the bad message; 401 for keys.
"""

from __future__ import annotations

import gzip
import json
import zlib

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from audience.segment_spec import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SpecError,
    parse_batch,
    parse_message,
)
from audience.services import messages_record
from tenants.authentication import write_key_from_request
from tenants.selectors import ApiKeyError


def _error(status: int, code: str, message: str, **extra: object) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)


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


@csrf_exempt
@require_POST
def ingest(request: HttpRequest, kind: str) -> JsonResponse:
    try:
        key = write_key_from_request(request)
    except ApiKeyError as exc:
        response = _error(401, "unauthorized", str(exc))
        response["WWW-Authenticate"] = 'Basic realm="ingest"'
        return response
    limit = MAX_BATCH_BYTES if kind == "batch" else MAX_MESSAGE_BYTES
    try:
        body = _body(request, limit)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"The body is not valid JSON: {exc}.") from None
        messages = parse_batch(payload) if kind == "batch" else [parse_message(payload, type_=kind)]
    except SpecError as exc:
        return JsonResponse({"error": exc.as_dict()}, status=400)
    messages_record(tenant=key.tenant, messages=messages, source="http")
    return JsonResponse({"success": True})
