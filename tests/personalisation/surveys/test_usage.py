"""Answers are used where events are: a segment of promoters, a journey branch on the answer,
and analytics' NPS figures (the rollups as answers arrive, the rebuild, the analytics API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from analytics.rebuild import rollups_rebuild
from audience.models import Contact, Event
from journeys import reactions
from personalisation.surveys.models import Survey
from segments import services as segment_services
from segments.selectors import segment_members
from tests.journeys.conftest import journey_build
from tests.personalisation.surveys.conftest import page_url

pytestmark = pytest.mark.django_db

PROMOTERS = {
    "type": "group",
    "match": "all",
    "children": [
        {
            "type": "event",
            "event": "Survey Answered",
            "where": [{"property": "score", "operator": "gte", "value": 9}],
        }
    ],
}


def answer(client: Any, survey: Survey, delivery: Any, score: int) -> Contact:
    assert client.post(page_url(survey, delivery), {"score": str(score)}).status_code == 200
    return delivery.contact


@pytest.fixture
def answered(client: Any, world: Any, nps: Any, delivery_factory: Any) -> dict[str, Contact]:
    """Acme: a promoter (10), a passive (8), two detractors (3, 6); Globex: a promoter."""
    people = {
        name: answer(client, nps, delivery_factory(), score)
        for name, score in (("promoter", 10), ("passive", 8), ("detractor", 3), ("unhappy", 6))
    }
    theirs = Survey.objects.create(
        tenant=world.globex, key="nps", name="NPS", kind="nps", question="?"
    )
    people["globex"] = answer(client, theirs, delivery_factory(tenant=world.globex), 9)
    return people


def test_a_segment_of_survey_answered_with_score_9_or_more_finds_the_promoter(
    world: Any, answered: Any
) -> None:
    segment = segment_services.segment_create(tenant=world.acme, name="Promoters", rules=PROMOTERS)
    assert list(segment_members(tenant=world.acme, segment=segment)) == [answered["promoter"]]


def test_a_journey_branch_on_the_answer_routes_promoters_and_the_others(
    client: Any, world: Any, nps: Any, delivery_factory: Any
) -> None:
    journey_build(
        world.acme,
        {
            "t": ("trigger_event", {"event": "Survey Answered", "filters": []}),
            "b": (
                "branch_event",
                {
                    "event": "Survey Answered",
                    "since": "days",
                    "days": 1,
                    "filters": [{"property": "score", "operator": "gte", "value": 9}],
                },
            ),
            "yes": ("action_update", {"field": "attributes.nps", "value": "promoter"}),
            "no": ("action_update", {"field": "attributes.nps", "value": "not yet"}),
        },
        "t.next>b b.yes>yes b.no>no",
    )
    promoter = answer(client, nps, delivery_factory(), 9)
    detractor = answer(client, nps, delivery_factory(), 2)
    ids = list(Event.objects.filter(name="Survey Answered").values_list("id", flat=True))
    reactions.events_process(tenant=world.acme, event_ids=ids, now=timezone.now())
    promoter.refresh_from_db()
    detractor.refresh_from_db()
    assert promoter.attributes == {"nps": "promoter"}
    assert detractor.attributes == {"nps": "not yet"}


def test_analytics_counts_the_answers_in_its_nps_figures(
    world: Any, answered: Any, api: Any
) -> None:
    wanted = "nps_responses,nps_promoters,nps_passives,nps_detractors"

    def totals(tenant: Any) -> dict[str, str]:
        body = api("get", f"analytics/metrics/?metrics={wanted}", tenant=tenant).json()
        return {m["key"]: m["total"] for m in body["metrics"]}

    expected = {
        "nps_responses": "4.00",
        "nps_promoters": "1.00",
        "nps_passives": "1.00",
        "nps_detractors": "2.00",
    }
    assert totals(world.acme) == expected  # counted as the answers arrived
    assert totals(world.globex)["nps_promoters"] == "1.00"
    rollups_rebuild(tenant=world.acme)  # and the same when rebuilt from the events
    assert totals(world.acme) == expected


def test_short_survey_answers_are_not_nps_responses(
    client: Any, world: Any, short: Any, delivery_factory: Any, api: Any
) -> None:
    url = page_url(short, delivery_factory())
    assert client.post(url, {"q1": "Friend", "q2": "5"}).status_code == 200
    body = api("get", "analytics/metrics/?metrics=nps_responses").json()
    assert body["metrics"][0]["total"] == "0.00"


def test_an_answer_follows_the_visitor_into_the_customer_they_turn_out_to_be(world) -> None:  # type: ignore[no-untyped-def]
    # A visitor answers the embedded NPS, then signs in: their anonymous contact is merged into
    # the customer's, and the answer must not be deleted with it.
    from audience.models import Contact
    from audience.segment_spec import parse_call
    from audience.services import calls_record
    from personalisation.surveys.models import SurveyAnswer
    from personalisation.surveys.services import survey_create

    survey = survey_create(tenant=world.acme, name="Shop NPS", kind="nps", question="Likely?")
    calls_record(
        tenant=world.acme,
        calls=[parse_call({"type": "identify", "userId": "ann", "messageId": "c1"})],
    )
    calls_record(
        tenant=world.acme,
        calls=[parse_call({"type": "page", "anonymousId": "anon-1", "messageId": "p1"})],
    )
    visitor = Contact.objects.get(tenant=world.acme, identities__value="anon-1")
    SurveyAnswer.objects.create(
        tenant=world.acme,
        survey=survey,
        contact=visitor,
        respondent="anon-1",
        send="web",
        channel="web",
        score=9,
    )
    calls_record(
        tenant=world.acme,
        calls=[
            parse_call(
                {"type": "identify", "userId": "ann", "anonymousId": "anon-1", "messageId": "c2"}
            )
        ],
    )
    ann = Contact.objects.get(tenant=world.acme, user_id="ann")
    assert not Contact.objects.filter(pk=visitor.pk).exists()  # merged away
    answer = SurveyAnswer.objects.get(survey=survey)
    assert answer.contact_id == ann.pk and answer.score == 9
