"""Request bodies: JSON within a size limit, maybe gzipped, and storable (core/storable.py: no
NUL character, no unpaired surrogate, nesting within the limit, numbers within range).

The limit is checked after decompression and before parsing. What the database cannot store is
refused at the door, naming the field, rather than failing the transaction (or a read) later.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
from django.http import HttpRequest

from core.bad_request import BadRequest
from core.storable import MAX_DEPTH, check_json

__all__ = ["BadRequest", "body_bytes", "body_json", "has_nul"]


def body_bytes(request: HttpRequest, *, limit: int) -> bytes:
    """The body, gunzipped when it says `Content-Encoding: gzip`; BadRequest past `limit` bytes."""
    raw = request.body
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            # Read at most one byte past the limit, so a gzip bomb cannot fill the memory.
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, limit + 1)
        except (zlib.error, gzip.BadGzipFile):
            raise BadRequest("The body is not valid gzip.") from None
    if len(raw) > limit:
        raise BadRequest(f"The body is larger than {limit} bytes.")
    return raw


def body_json(request: HttpRequest, *, limit: int) -> tuple[Any, int]:
    """The decoded JSON body and its size in bytes (after gzip); BadRequest says what is wrong."""
    raw = body_bytes(request, limit=limit)
    return json_loads(raw), len(raw)


def json_loads(raw: bytes) -> Any:
    """Parse a JSON body and refuse what cannot be stored (core/storable.py): BadRequest names
    the field. orjson already refuses unpaired surrogates, bad UTF-8, raw control characters,
    NaN and numbers beyond float range."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    # JSON can only carry a NUL character escaped, so text is scanned only when the escape is
    # there; the depth is checked on every body (one pass, no copies).
    check_json(payload, max_depth=MAX_DEPTH, texts=b"\\u0000" in raw, source=raw)
    return payload


def has_nul(value: object) -> bool:
    """Whether any text in a parsed JSON value holds NUL, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(has_nul, value))
    return False
