"""The tracker's endpoints: GET /v1/surveys/<id> and POST /v1/surveys/<id>/answers, with the
write key, CORS and the /v1 error shape; another team's survey is unknown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audience.inbox import inbox_drain
from audience.models import Contact, Event, Identity
from personalisation.surveys.models import SurveyAnswer
from tests.factories import api_key, basic

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(world: Any) -> dict[str, str]:
    return {
        "acme": basic(api_key(world.acme, kind="write")[1]),
        "globex": basic(api_key(world.globex, kind="write")[1]),
        "acme_secret": basic(api_key(world.acme, kind="secret")[1]),
    }


def get(client: Any, survey: Any, auth: str, **params: str) -> Any:
    return client.get(f"/v1/surveys/{survey.public_id}", params, HTTP_AUTHORIZATION=auth)


def post(client: Any, survey: Any, auth: str, body: Any) -> Any:
    return client.post(
        f"/v1/surveys/{survey.public_id}/answers",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def test_it_describes_a_survey_for_the_tracker(client: Any, short: Any, keys: Any) -> None:
    response = get(client, short, keys["acme"], anonymousId="a1")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.json() == {
        "survey": str(short.public_id),
        "kind": "short",
        "title": "Checkout feedback",
        "question": "Three quick questions about your order.",
        "questions": [
            {
                "id": "q1",
                "type": "choice",
                "label": "How did you find us?",
                "choices": ["Search", "Friend", "Ad"],
            },
            {"id": "q2", "type": "scale", "label": "How easy was checkout?", "choices": []},
            {"id": "q3", "type": "text", "label": "Anything we should improve?", "choices": []},
        ],
        "thanks": "Thank you for your answer.",
        "answered": False,
    }


def test_a_known_visitor_s_answer_is_an_event_at_once_and_comes_once(
    client: Any, world: Any, nps: Any, keys: Any
) -> None:
    ann = Contact.objects.create(tenant=world.acme, user_id="u-ann")
    Identity.objects.create(tenant=world.acme, contact=ann, kind="user_id", value="u-ann")
    response = post(client, nps, keys["acme"], {"userId": "u-ann", "score": 9, "comment": "Nice"})
    assert response.status_code == 201 and response.json() == {"success": True}
    event = Event.objects.get(name="Survey Answered")
    assert event.contact_id == ann.pk
    assert event.properties["channel"] == "web" and event.properties["send"] == "web"
    assert event.properties["score"] == 9 and event.properties["comment"] == "Nice"
    again = post(client, nps, keys["acme"], {"userId": "u-ann", "score": 3})
    assert again.status_code == 409 and again.json()["code"] == "already_answered"
    assert get(client, nps, keys["acme"], userId="u-ann").json()["answered"] is True
    assert SurveyAnswer.objects.count() == 1


def test_an_unknown_visitor_becomes_a_contact_with_the_answer(
    client: Any, world: Any, nps: Any, keys: Any
) -> None:
    assert post(client, nps, keys["acme"], {"anonymousId": "anon-7", "score": 4}).status_code == 201
    # Not twice before the first answer has even been recorded.
    assert post(client, nps, keys["acme"], {"anonymousId": "anon-7", "score": 5}).status_code == 409
    assert get(client, nps, keys["acme"], anonymousId="anon-7").json()["answered"] is True
    inbox_drain()
    event = Event.objects.get(name="Survey Answered")
    assert event.properties["score"] == 4
    assert Identity.objects.get(tenant=world.acme, value="anon-7").contact_id == event.contact_id
    # Once they are a contact, the contact's answer is found too.
    assert get(client, nps, keys["acme"], anonymousId="anon-7").json()["answered"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"anonymousId": "a", "score": 11}, "score"),
        ({"anonymousId": "a", "score": "9.5"}, "score"),
        ({"anonymousId": "a"}, "score"),
        ({"score": 9}, "anonymousId"),
        ({"anonymousId": 5, "score": 9}, "anonymousId"),
        ({"anonymousId": "a" * 300, "score": 9}, "anonymousId"),
        ({"anonymousId": "a", "score": 9, "comment": "x" * 2001}, "comment"),
    ],
)
def test_a_bad_nps_answer_names_its_field(
    client: Any, nps: Any, keys: Any, body: Any, field: str
) -> None:
    response = post(client, nps, keys["acme"], body)
    assert response.status_code == 400, response.content
    assert response.json()["success"] is False and response.json()["field"] == field
    assert not SurveyAnswer.objects.exists()


@pytest.mark.parametrize(
    ("answers", "field"),
    [({"q9": "x"}, "answers.q9"), ({"q2": 7}, "answers.q2"), ({}, "answers"), ("q1", "answers")],
)
def test_a_bad_short_answer_names_its_question(
    client: Any, short: Any, keys: Any, answers: Any, field: str
) -> None:
    response = post(client, short, keys["acme"], {"anonymousId": "a", "answers": answers})
    assert response.status_code == 400 and response.json()["field"] == field


def test_a_body_that_is_not_an_object_is_refused(client: Any, nps: Any, keys: Any) -> None:
    response = client.post(
        f"/v1/surveys/{nps.public_id}/answers",
        "[1]",
        content_type="application/json",
        HTTP_AUTHORIZATION=keys["acme"],
    )
    assert response.status_code == 400 and response.json()["success"] is False


def test_another_team_s_survey_is_unknown_and_keys_are_checked(
    client: Any, world: Any, nps: Any, keys: Any
) -> None:
    for call in (
        lambda auth: get(client, nps, auth, anonymousId="a"),
        lambda auth: post(client, nps, auth, {"anonymousId": "a", "score": 9}),
    ):
        assert call(keys["globex"]).status_code == 404
        assert call(keys["acme_secret"]).status_code == 401  # a secret key is not a write key
        assert call("Basic bm9wZTo=").status_code == 401
        assert call("").status_code == 401
    assert client.get("/v1/surveys/not-a-uuid", HTTP_AUTHORIZATION=keys["acme"]).status_code == 404
    nps.active = False
    nps.save()
    assert get(client, nps, keys["acme"]).status_code == 404
    assert not SurveyAnswer.objects.exists()


def test_preflights_allow_any_origin(client: Any, nps: Any) -> None:
    response = client.options(f"/v1/surveys/{nps.public_id}/answers")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "GET" in client.options(f"/v1/surveys/{nps.public_id}")["Access-Control-Allow-Methods"]


def test_a_visitor_id_no_database_stores_is_refused(client: Any, nps: Any, keys: Any) -> None:
    response = get(client, nps, keys["acme"], anonymousId="a\x00b")
    assert response.status_code == 400 and response.json()["field"] == "anonymousId"
    response = post(client, nps, keys["acme"], {"anonymousId": "a", "score": 9, "comment": "\x00"})
    assert response.status_code == 400  # the body's own check (core/body.py) or the service's
