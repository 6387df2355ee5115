"""One JSON error shape for the whole REST API: {"error": {"code", "message", "fields"?}}.

`exception_handler` is DRF's EXCEPTION_HANDLER (config/settings.py); `api_error` builds the same
body for the few JSON answers made outside DRF (the API's 404 page in ops/views.py).
The browser edge (/v1/track, /v1/push) answers in Segment's shape instead: see core/edge.py.
An uncaught exception is answered in the same shapes by ops.views.error_500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.bad_request import BadRequest


def api_error(*, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    """The body of an API error; `fields` maps field names to their messages, when any."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BadRequest):
        # The storable checks (core/storable.py) of query parameters and bodies.
        exc = exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})
    elif isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError; the API shows it like a serializer error.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        response.data = api_error(
            code="invalid",
            message="The request has invalid fields.",
            fields=detail if isinstance(detail, dict) else {"non_field_errors": detail},
        )
    elif isinstance(detail, dict) and "detail" in detail:
        code = getattr(detail["detail"], "code", getattr(exc, "default_code", "error"))
        response.data = api_error(code=code, message=str(detail["detail"]))
    else:
        response.data = api_error(code=getattr(exc, "default_code", "error"), message=str(detail))
    return response
