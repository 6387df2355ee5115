"""One JSON error shape for the whole REST API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError; the API shows it like a serializer error.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    body: dict[str, Any] = {"code": getattr(exc, "default_code", "error")}
    if isinstance(exc, exceptions.ValidationError):
        body["code"] = "invalid"
        body["message"] = "The request has invalid fields."
        body["fields"] = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    elif isinstance(detail, dict) and "detail" in detail:
        body["message"] = str(detail["detail"])
        body["code"] = getattr(detail["detail"], "code", body["code"])
    else:
        body["message"] = str(detail)
    response.data = {"error": body}
    return response
