"""The error of a request refused with 400, shared by the browser edge and the REST API."""

from __future__ import annotations

from typing import Any


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
