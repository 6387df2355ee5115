"""Request bodies: JSON within a size limit, maybe gzipped, and free of the NUL character.

The limit is checked after decompression and before parsing. PostgreSQL stores no NUL in text or
jsonb, so text holding one is refused at the door rather than failing the transaction later.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
from django.http import HttpRequest


class BadRequest(Exception):
    """A request refused with 400; the message is safe to show the caller. `field` names the
    offending field, `index` the message's place in a batch."""

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.index = index

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": "invalid", "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        if self.field is not None:
            body["field"] = self.field
        return body


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
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also bad UTF-8 and NaN (big integers become floats)
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    # JSON can only carry a NUL character escaped, so the scan runs only when the escape is there.
    if b"\\u0000" in raw and has_nul(payload):
        raise BadRequest("The body contains the NUL character (\\u0000), which cannot be stored.")
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
