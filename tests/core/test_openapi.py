"""The published OpenAPI schema says what the API answers: lists are page objects, every
operation documents its errors, and emails that may be empty are not `format: email`."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from audience.models import Contact

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in schema["paths"].items()
        for method in METHODS
        if method in item
    ]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/")
        node = schema["components"][kind][name]
    return node


def test_it_documents_every_list_as_the_page_object_it_serves(schema, api, world) -> None:
    lists = {
        path: resolve(schema, op["responses"]["200"]["content"]["application/json"]["schema"])
        for path, method, op in operations(schema)
        if method == "get" and "cursor" in {p["name"] for p in op.get("parameters", [])}
    }
    assert set(lists) == {
        "/api/v1/campaigns/",
        "/api/v1/campaigns/{public_id}/occurrences/",
        "/api/v1/contacts/",
        "/api/v1/events/",
        "/api/v1/journeys/",
        "/api/v1/journeys/{public_id}/enrollments/",
        "/api/v1/messages/",
        "/api/v1/personas/runs/",
        "/api/v1/placements/",
        "/api/v1/products/",
        "/api/v1/segments/",
        "/api/v1/segments/{public_id}/members/",
        "/api/v1/surveys/",
        "/api/v1/surveys/{public_id}/answers/",
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{public_id}/messages/",
    }
    for path, body in lists.items():
        assert body["type"] == "object", path
        assert set(body["required"]) == {"next", "previous", "results"}, path
        assert body["properties"]["results"]["type"] == "array", path
    served = api("get", "contacts/?limit=1").json()
    assert set(served) == {"next", "previous", "results"}
    templates = schema["paths"]["/api/v1/message-templates/"]["get"]["responses"]["200"]
    assert resolve(schema, templates["content"]["application/json"]["schema"])["required"] == [
        "results"
    ]


def test_it_documents_the_error_answers_of_every_operation(schema) -> None:
    for path, method, op in operations(schema):
        documented = set(op["responses"])
        assert {"400", "401", "429"} <= documented, (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)
        if "requestBody" in op:
            assert "415" in documented, (method, path)
        for status in documented - {"200", "201", "202", "204"}:  # 202: a persona run queued
            response = resolve(schema, op["responses"][status])
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    assert "Retry-After" in schema["components"]["responses"]["TooManyRequests"]["headers"]


def test_it_serves_errors_in_the_documented_shape(api, world) -> None:
    for response, status in (
        (api("get", "contacts/?cursor=nonsense"), 400),
        (api("get", "segments/9b2f1ad4-3cf5-4a49-9d1e-6f4a4b0b7c39/"), 404),
        (api("post", "segments/", {"name": "x"}), 400),
    ):
        assert response.status_code == status
        assert set(response.json()) == {"error"}
        assert {"code", "message"} <= set(response.json()["error"])
    assert api("get", "contacts/?cursor=nonsense").json()["error"]["fields"].keys() == {"cursor"}


def test_it_does_not_promise_an_email_format_for_emails_that_may_be_empty(
    schema, api, world
) -> None:
    Contact.objects.create(tenant=world.acme, user_id="no-email")  # email ""
    assert api("get", "contacts/").json()["results"][0]["email"] == ""
    components = schema["components"]["schemas"]
    for name in (
        "ContactOutput",
        "ContactDetailOutput",
        "SegmentMemberOutput",
        "SenderIdentityOutput",
    ):
        for field, prop in components[name]["properties"].items():
            if field == "email" or field.endswith("_email"):
                assert "format" not in prop, (name, field)
    # Inputs that take "" say so, and ones that do not keep the format.
    upsert_email = components["ContactUpsertInputRequest"]["properties"]["email"]
    assert {"type": "string", "maxLength": 0} in upsert_email["oneOf"]
    assert components["ContactRefRequest"]["properties"]["email"]["format"] == "email"
