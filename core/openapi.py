"""The REST API's OpenAPI schema says what the API actually answers (DRF's DEFAULT_SCHEMA_CLASS).

drf-spectacular describes the success bodies from the serializers; this adds what it cannot see:
- the error answers every operation may give, each a reusable response of components/responses
  with the body core.api_errors builds: 400, 401 and 429 everywhere, 404 where the path names an
  object, 415 where there is a request body, and what a view declares (`404: API_ERROR`);
- email fields that may show an empty string are plain strings (no `format: email`, which ""
  breaks);
- an operation's description is its own or its view's docstring, not the base class's.
"""

from __future__ import annotations

import inspect
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# In @extend_schema(responses={…}): this status answers with the API's error body.
API_ERROR = OpenApiResponse(description="An error (the API's error shape).")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error of the REST API has this shape (docs/api.md, Errors).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable and machine-readable, e.g. `invalid`, "
                    "`not_authenticated`, `not_found`, `throttled`.",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "With `invalid`: each field's messages (a list, or an "
                    "object for a nested field); `non_field_errors` for the request as a whole.",
                },
            },
        }
    },
    "example": {
        "error": {
            "code": "invalid",
            "message": "The request has invalid fields.",
            "fields": {"email": ["Enter a valid email address."]},
        }
    },
}

# status → (component name, description, headers)
ERROR_RESPONSES: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: (
        "BadRequest",
        "The request is malformed or has invalid fields (`fields` says which).",
        {},
    ),
    401: ("Unauthorized", "No secret API key, or not a valid one.", {}),
    404: ("NotFound", "No such object in the key's team (another team's objects included).", {}),
    409: ("Conflict", "The request conflicts with one made before (see the operation).", {}),
    415: ("UnsupportedMediaType", "The body is not `application/json`.", {}),
    429: (
        "TooManyRequests",
        "Too many requests for this key: wait `Retry-After` seconds.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    ),
}
EVERY_OPERATION = (400, 401, 429)
BODY_METHODS = ("POST", "PUT", "PATCH")

BLANK_EMAIL = "An email address, or an empty string when there is none."


def _status(code: object) -> int | None:
    code = code[0] if isinstance(code, tuple) else code
    try:
        return int(str(code))
    except ValueError:
        return None


def _model_field_may_be_blank(field: serializers.Field) -> bool:
    """Whether the serializer field reads a model field that may hold ""."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return bool(model._meta.get_field(field.source).blank)
    except FieldDoesNotExist:
        return False


class AutoSchema(SpectacularAutoSchema):
    def get_description(self) -> str:  # type: ignore[override]
        method = getattr(self.view, self.method.lower(), None)
        own = method.__doc__ if method is not None else None
        # The class's own docstring: inherited ones describe the base class (TenantAPIView).
        return inspect.cleandoc(own or type(self.view).__dict__.get("__doc__") or "")

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        declared = {s for code in responses if (s := _status(code)) is not None and s >= 400}
        statuses = {*EVERY_OPERATION, *declared}
        if "{" in self.path:
            statuses.add(404)
        if self.method in BODY_METHODS and self.get_request_serializer() is not None:
            statuses.add(415)
        for status in sorted(statuses):  # a view's `404: API_ERROR` becomes the shared one too
            responses[str(status)] = self._error_response(status)
        return dict(sorted(responses.items()))

    def _error_response(self, status: int) -> dict[str, Any]:
        name, description, headers = ERROR_RESPONSES[status]
        self.registry.register_on_missing(
            ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, schema=ERROR_SCHEMA)
        )
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if headers:
            response["headers"] = headers
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.RESPONSE, schema=response, object=name
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)
        # Fields that accept "" get `oneOf: [email, empty]` from drf-spectacular; read-only ones
        # showing a model field that may be blank get neither, so they lose the format here.
        if (
            isinstance(field, serializers.EmailField)
            and schema.get("format") == "email"
            and _model_field_may_be_blank(field)
        ):
            del schema["format"]
            given = schema.get("description")
            schema["description"] = f"{given} {BLANK_EMAIL}" if given else BLANK_EMAIL
