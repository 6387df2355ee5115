"""Surveys' service: what a survey may hold, what an answer may hold (the field named in every
refusal), and that an answer is stored once per respondent and send, with its event."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audience.models import Contact, Event
from personalisation.surveys import services
from personalisation.surveys.models import SurveyAnswer

pytestmark = pytest.mark.django_db


def refused(call: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return caught.value.message_dict


def test_it_keys_a_survey_from_its_name_once_per_team(world: Any, nps: Any) -> None:
    assert nps.key == "customer_nps"
    again = services.survey_create(tenant=world.acme, name="Customer NPS", kind="nps", question="?")
    assert again.key == "customer_nps_2"
    other = services.survey_create(
        tenant=world.globex, name="Customer NPS", kind="nps", question="?"
    )
    assert other.key == "customer_nps"  # keys are per team


def test_it_refuses_bad_surveys_by_field(world: Any, nps: Any) -> None:
    create = services.survey_create
    assert set(refused(create, tenant=world.acme, name="", kind="poll", question="")) == {
        "name",
        "kind",
        "question",
    }
    six = [{"type": "text", "label": f"Q{n}"} for n in range(6)]
    assert "questions" in refused(
        create, tenant=world.acme, name="S", kind="short", question="?", questions=six
    )
    one_choice = [{"type": "choice", "label": "Pick", "choices": ["Only"]}]
    assert "questions.1.choices" in refused(
        create, tenant=world.acme, name="S", kind="short", question="?", questions=one_choice
    )
    assert "questions.1.type" in refused(
        create,
        tenant=world.acme,
        name="S",
        kind="short",
        question="?",
        questions=[{"type": "x", "label": "L"}],
    )
    assert "key" in refused(
        create, tenant=world.acme, name="S", kind="nps", question="?", key="customer_nps"
    )
    assert "key" in refused(
        create, tenant=world.acme, name="S", kind="nps", question="?", key="Bad Key"
    )


def test_question_ids_stay_with_their_question_when_one_is_removed(world: Any, short: Any) -> None:
    assert [q["id"] for q in short.questions] == ["q1", "q2", "q3"]
    kept = [q for q in short.questions if q["id"] != "q1"]
    services.survey_update(
        tenant=world.acme, survey=short, questions=[*kept, {"type": "text", "label": "New one"}]
    )
    assert [(q["id"], q["label"]) for q in short.questions] == [
        ("q2", "How easy was checkout?"),
        ("q3", "Anything we should improve?"),
        ("q1", "New one"),
    ]


@pytest.mark.parametrize(
    ("score", "answers", "field"),
    [
        (11, None, "score"),
        (-1, None, "score"),
        (9.5, None, "score"),
        (True, None, "score"),
        (None, None, "score"),
        ("ten", None, "score"),
        (9, {"q1": "x"}, "answers"),
    ],
)
def test_an_nps_answer_needs_a_score_from_0_to_10(
    nps: Any, score: Any, answers: Any, field: str
) -> None:
    assert field in refused(services.answer_clean, survey=nps, score=score, answers=answers)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"q9": "x"}, "answers.q9"),
        ({"q1": "Billboard"}, "answers.q1"),
        ({"q2": 6}, "answers.q2"),
        ({"q2": 0}, "answers.q2"),
        ({"q3": "x" * 1001}, "answers.q3"),
        ({}, "answers"),
        (["q1"], "answers"),
    ],
)
def test_a_short_answer_names_the_question_it_gets_wrong(
    short: Any, answers: Any, field: str
) -> None:
    assert field in refused(services.answer_clean, survey=short, answers=answers)


def test_a_short_answer_keeps_what_was_answered_in_question_order(short: Any) -> None:
    assert services.answer_clean(
        survey=short, answers={"q3": " Faster delivery ", "q1": "Friend", "q2": "4"}
    ) == (None, "", {"q1": "Friend", "q2": 4, "q3": "Faster delivery"})


def test_an_answer_is_an_event_and_comes_once_per_send(world: Any, nps: Any) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    who = services.Respondent(contact=ann)
    answer = services.answer_record(
        tenant=world.acme,
        survey=nps,
        respondent=who,
        channel="email",
        send="d-1",
        score=10,
        comment="Great service",
    )
    event = Event.objects.get(tenant=world.acme, contact=ann, name="Survey Answered")
    assert event.properties == {
        "survey": str(nps.public_id),
        "survey_name": "Customer NPS",
        "kind": "nps",
        "score": 10,
        "comment": "Great service",
        "answers": {},
        "channel": "email",
        "send": "d-1",
    }
    assert event.source == "surveys" and event.message_id.startswith("wf:surveys:")
    with pytest.raises(services.AlreadyAnswered):
        services.answer_record(
            tenant=world.acme, survey=nps, respondent=who, channel="email", send="d-1", score=3
        )
    # Another message asking again is another send: answered again.
    services.answer_record(
        tenant=world.acme, survey=nps, respondent=who, channel="email", send="d-2", score=8
    )
    assert SurveyAnswer.objects.filter(survey=nps).count() == 2
    assert answer.nps_class == "promoter"


def test_the_database_itself_refuses_a_second_answer_for_a_send(world: Any, nps: Any) -> None:
    row = {
        "tenant": world.acme,
        "survey": nps,
        "respondent": "anon:a1",
        "send": "web",
        "channel": "web",
    }
    SurveyAnswer.objects.create(**row, score=9)
    with pytest.raises(IntegrityError), transaction.atomic():
        SurveyAnswer.objects.create(**row, score=2)


def test_a_closed_survey_takes_no_answer(world: Any, nps: Any) -> None:
    services.survey_update(tenant=world.acme, survey=nps, active=False)
    who = services.Respondent(anonymous_id="a1")
    assert "survey" in refused(
        services.answer_record,
        tenant=world.acme,
        survey=nps,
        respondent=who,
        channel="web",
        send="web",
        score=9,
    )
