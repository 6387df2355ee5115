"""The REST API's one error shape, {"error": {"code", "message", "fields"?}}, whatever raised."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions

from core.api_errors import api_error, exception_handler


def handled(exc: Exception) -> tuple[int, object]:
    response = exception_handler(exc, {})
    assert response is not None
    return response.status_code, response.data


def test_it_builds_the_error_body_with_fields_only_when_there_are_any() -> None:
    assert api_error(code="not_found", message="Not found.") == {
        "error": {"code": "not_found", "message": "Not found."}
    }
    assert api_error(code="invalid", message="Bad.", fields={"name": ["Taken."]}) == {
        "error": {"code": "invalid", "message": "Bad.", "fields": {"name": ["Taken."]}}
    }


def test_it_shows_a_serializer_error_with_its_fields() -> None:
    status, body = handled(exceptions.ValidationError({"email": ["Enter a valid email."]}))
    assert status == 400
    assert body == {
        "error": {
            "code": "invalid",
            "message": "The request has invalid fields.",
            "fields": {"email": ["Enter a valid email."]},
        }
    }


def test_it_shows_a_services_django_validation_error_like_a_serializer_error() -> None:
    status, body = handled(DjangoValidationError({"name": ["A segment with this name exists."]}))
    assert status == 400
    assert body["error"]["fields"] == {"name": ["A segment with this name exists."]}  # type: ignore[index]

    _, body = handled(DjangoValidationError("Nothing to send."))
    assert body["error"]["fields"] == {"non_field_errors": ["Nothing to send."]}  # type: ignore[index]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404("No such contact"), 404, "not_found"),
        (PermissionDenied(), 403, "permission_denied"),
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.Throttled(wait=3), 429, "throttled"),
    ],
)
def test_it_gives_every_api_exception_a_code_and_message(
    exc: Exception, status: int, code: str
) -> None:
    answered, body = handled(exc)
    assert answered == status
    assert body["error"]["code"] == code  # type: ignore[index]
    assert body["error"]["message"]  # type: ignore[index]
    assert "fields" not in body["error"]  # type: ignore[operator,index]


def test_it_leaves_other_exceptions_to_django() -> None:
    assert exception_handler(ZeroDivisionError(), {}) is None
