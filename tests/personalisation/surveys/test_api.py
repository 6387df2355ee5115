"""The surveys REST API: secret key, the team's own surveys only (another team's id is a 404
everywhere), refusals that name the field, and the endpoints in the OpenAPI schema."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.personalisation.surveys.conftest import page_url

pytestmark = pytest.mark.django_db


def fields(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


def test_it_creates_lists_and_reads_surveys(api: Any) -> None:
    created = api(
        "post",
        "surveys/",
        {
            "name": "After delivery",
            "kind": "short",
            "question": "Two questions.",
            "questions": [
                {"type": "choice", "label": "On time?", "choices": ["Yes", "No"]},
                {"type": "scale", "label": "Packaging"},
            ],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"] == "after_delivery" and body["kind"] == "short"
    assert [q["id"] for q in body["questions"]] == ["q1", "q2"]
    listed = api("get", "surveys/").json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]
    detail = api("get", f"surveys/{body['id']}/").json()
    assert detail["results"]["answers"] == 0 and detail["results"]["nps"] is None


def test_it_reads_a_survey_s_results_and_answers(
    api: Any, client: Any, nps: Any, delivery_factory: Any
) -> None:
    for score in (10, 9, 7, 2):
        client.post(
            page_url(nps, delivery_factory()), {"score": str(score), "comment": f"s{score}"}
        )
    detail = api("get", f"surveys/{nps.public_id}/").json()
    assert detail["results"] == {
        "answers": 4,
        "nps": 25,
        "promoters": 2,
        "passives": 1,
        "detractors": 1,
    }
    answers = api("get", f"surveys/{nps.public_id}/answers/").json()["results"]
    assert [a["score"] for a in answers] == [2, 7, 9, 10]  # newest first
    assert answers[0]["channel"] == "email" and answers[0]["comment"] == "s2"
    assert uuid.UUID(answers[0]["contact"])


def test_it_changes_and_closes_a_survey(api: Any, nps: Any) -> None:
    changed = api("patch", f"surveys/{nps.public_id}/", {"name": "NPS Q4", "active": False})
    assert changed.status_code == 200
    assert changed.json()["name"] == "NPS Q4" and changed.json()["active"] is False
    assert fields(api("patch", f"surveys/{nps.public_id}/", {"name": ""})) == {
        "name": ["This field may not be blank."]
    }


def test_it_refuses_bad_surveys_naming_the_field(api: Any, nps: Any) -> None:
    assert set(fields(api("post", "surveys/", {"kind": "poll"}))) == {"name", "kind", "question"}
    bad = fields(
        api("post", "surveys/", {"name": "S", "kind": "short", "question": "?", "questions": []})
    )
    assert "questions" in bad
    bad = fields(
        api(
            "post",
            "surveys/",
            {
                "name": "S",
                "kind": "short",
                "question": "?",
                "questions": [{"type": "choice", "label": "Pick", "choices": ["One"]}],
            },
        )
    )
    assert "questions.1.choices" in bad
    assert "key" in fields(
        api(
            "post", "surveys/", {"name": "S", "kind": "nps", "question": "?", "key": "customer_nps"}
        )
    )


def test_another_team_s_surveys_are_unknown(api: Any, world: Any, nps: Any) -> None:
    for path in (f"surveys/{nps.public_id}/", f"surveys/{nps.public_id}/answers/"):
        assert api("get", path, tenant=world.globex).status_code == 404
        assert api("get", path).status_code == 200
    assert (
        api("patch", f"surveys/{nps.public_id}/", {"name": "x"}, tenant=world.globex).status_code
        == 404
    )
    assert api("get", "surveys/", tenant=world.globex).json()["results"] == []
    assert api("get", "surveys/not-a-uuid/").status_code == 404
    nps.refresh_from_db()
    assert nps.name == "Customer NPS"


def test_it_needs_a_secret_key(client: Any, world: Any, nps: Any) -> None:
    from tests.factories import api_key

    write = api_key(world.acme, kind="write")[1]
    assert client.get("/api/v1/surveys/").status_code in (401, 403)
    assert client.get("/api/v1/surveys/", HTTP_AUTHORIZATION=f"Bearer {write}").status_code in (
        401,
        403,
    )


def test_the_schema_documents_the_survey_endpoints(client: Any) -> None:
    schema = client.get("/api/v1/schema/?format=json").json()
    for path in (
        "/api/v1/surveys/",
        "/api/v1/surveys/{public_id}/",
        "/api/v1/surveys/{public_id}/answers/",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/v1/surveys/"]) >= {"get", "post"}
