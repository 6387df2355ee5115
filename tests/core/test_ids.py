"""UUID parsing of public ids: a malformed id is "no such object", never a server error."""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404

from core.ids import parse_uuid, uuid_or_404

ID = uuid.UUID("6f1c2a4e-9b7d-4c3e-8a5f-0d2b1e3c4a5b")


@pytest.mark.parametrize(
    "value",
    [ID, str(ID), str(ID).upper(), ID.hex, f"{{{ID}}}", f"urn:uuid:{ID}"],
)
def test_it_reads_every_spelling_of_a_uuid(value: object) -> None:
    assert parse_uuid(value) == ID
    assert uuid_or_404(value, what="contact") == ID


@pytest.mark.parametrize(
    "value", [None, "", "not-a-uuid", str(ID)[:-1], str(ID) + "0", 42, "../etc/passwd"]
)
def test_it_reads_anything_else_as_no_uuid(value: object) -> None:
    assert parse_uuid(value) is None


def test_it_turns_a_malformed_id_into_a_404_naming_what_was_looked_for() -> None:
    with pytest.raises(Http404, match=r"^No such segment$"):
        uuid_or_404("nope", what="segment")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "what"),
    [("contacts", "contact"), ("segments", "segment"), ("messages", "message")],
)
def test_it_answers_a_malformed_id_in_the_api_with_a_json_404(api, path: str, what: str) -> None:
    response = api("get", f"{path}/not-a-uuid/")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": f"No such {what}"}
