"""The hosted page /s/<token>/ a reader reaches from an email or a push: no login, no script,
signed per contact and message; one answer per message; refusals that keep what was typed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import signing

from audience.models import Event
from personalisation.surveys import links
from personalisation.surveys.models import SurveyAnswer
from tests.personalisation.surveys.conftest import page_url

pytestmark = pytest.mark.django_db


def radios(html: str, name: str) -> list[str]:
    return re.findall(rf'<input type="radio" name="{name}" value="([^"]+)"', html)


def test_it_asks_the_nps_question_as_a_labelled_scale(
    client: Any, nps: Any, delivery_factory: Any
) -> None:
    response = client.get(page_url(nps, delivery_factory()))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<legend>How likely are you to recommend Acme to a friend?</legend>" in html
    assert radios(html, "score") == [str(n) for n in range(11)]
    assert '<label for="id_comment">Why?' in html
    assert "<script" not in html and "style=" not in html  # works without JS, strict CSP
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in response["Cache-Control"]


def test_a_one_click_score_opens_the_page_with_it_chosen_and_records_nothing(
    client: Any, nps: Any, delivery_factory: Any
) -> None:
    html = client.get(page_url(nps, delivery_factory()) + "?score=9").content.decode()
    assert '<input type="radio" name="score" value="9" checked>' in html
    assert html.count(" checked>") == 1
    assert "You chose 9" in html
    # Mail scanners open every link: a GET never answers.
    assert (
        not SurveyAnswer.objects.exists()
        and not Event.objects.filter(name="Survey Answered").exists()
    )


def test_an_answer_is_recorded_once_and_thanked(
    client: Any, world: Any, nps: Any, delivery_factory: Any
) -> None:
    delivery = delivery_factory()
    url = page_url(nps, delivery)
    response = client.post(url, {"score": "9", "comment": "Fast delivery"})
    assert response.status_code == 200
    assert "Thanks, that helps us a lot." in response.content.decode()
    answer = SurveyAnswer.objects.get()
    assert (answer.contact, answer.score, answer.comment, answer.channel, answer.send) == (
        delivery.contact,
        9,
        "Fast delivery",
        "email",
        str(delivery.public_id),
    )
    event = Event.objects.get(name="Survey Answered")
    assert event.contact_id == delivery.contact_id
    assert event.properties["score"] == 9 and event.properties["channel"] == "email"
    assert event.properties["send"] == str(delivery.public_id)

    again = client.post(url, {"score": "2"})
    assert again.status_code == 409
    assert "You have already answered" in again.content.decode()
    assert client.get(url).status_code == 200
    assert "You have already answered" in client.get(url).content.decode()
    assert (
        SurveyAnswer.objects.count() == 1
        and Event.objects.filter(name="Survey Answered").count() == 1
    )


def test_the_same_contact_answers_again_for_another_message(
    client: Any, nps: Any, delivery_factory: Any
) -> None:
    first = delivery_factory()
    second = delivery_factory(contact=first.contact)
    assert client.post(page_url(nps, first), {"score": "6"}).status_code == 200
    assert client.post(page_url(nps, second), {"score": "8"}).status_code == 200
    assert sorted(SurveyAnswer.objects.values_list("score", flat=True)) == [6, 8]


def test_a_push_link_answers_as_push(client: Any, nps: Any, delivery_factory: Any) -> None:
    delivery = delivery_factory(channel="push")
    assert client.post(page_url(nps, delivery), {"score": "10"}).status_code == 200
    assert SurveyAnswer.objects.get().channel == "push"


def test_a_bad_answer_is_refused_with_its_error_and_keeps_the_comment(
    client: Any, nps: Any, delivery_factory: Any
) -> None:
    url = page_url(nps, delivery_factory())
    for score in ("11", "", "abc"):
        response = client.post(url, {"score": score, "comment": "Kept text"})
        html = response.content.decode()
        assert response.status_code == 400
        assert "Choose a score from 0 to 10." in html
        assert ">Kept text</textarea>" in html
    assert not SurveyAnswer.objects.exists()


def test_a_short_survey_page_asks_each_question(
    client: Any, short: Any, delivery_factory: Any
) -> None:
    url = page_url(short, delivery_factory())
    html = client.get(url).content.decode()
    assert "<legend>How did you find us?</legend>" in html
    assert radios(html, "q1") == ["Search", "Friend", "Ad"]
    assert radios(html, "q2") == ["1", "2", "3", "4", "5"]
    assert '<label for="id_q3">Anything we should improve?</label>' in html
    bad = client.post(url, {"q1": "Billboard", "q2": "4", "q3": "More sizes"})
    assert bad.status_code == 400 and "Choose one of: Search, Friend, Ad." in bad.content.decode()
    assert ">More sizes</textarea>" in bad.content.decode()
    assert client.post(url, {"q1": "Friend", "q2": "4", "q3": "More sizes"}).status_code == 200
    assert SurveyAnswer.objects.get().answers == {"q1": "Friend", "q2": 4, "q3": "More sizes"}
    event = Event.objects.get(name="Survey Answered")
    assert event.properties["kind"] == "short" and event.properties["score"] is None


def test_a_closed_survey_says_so(client: Any, world: Any, nps: Any, delivery_factory: Any) -> None:
    nps.active = False
    nps.save()
    url = page_url(nps, delivery_factory())
    assert "This survey is closed" in client.get(url).content.decode()
    client.post(url, {"score": "9"})
    assert not SurveyAnswer.objects.exists()


def _token(tenant_id: int, survey: Any, contact: Any, delivery: Any) -> str:
    return links.token_make(
        links.SurveyRef(tenant_id, survey.public_id, contact.public_id, delivery.public_id)
    )


def test_a_link_cannot_be_forged_or_moved(
    client: Any, world: Any, nps: Any, delivery_factory: Any
) -> None:
    mine, theirs = delivery_factory(), delivery_factory()
    token = page_url(nps, mine).split("/")[2]
    value, _, signature = token.rpartition(":")
    # Garbled, re-signed with another key, or pointing one part elsewhere: not valid.
    other_contact = _token(world.acme.pk, nps, theirs.contact, mine)  # my message, their contact
    globex_delivery = delivery_factory(tenant=world.globex)
    other_team = _token(world.globex.pk, nps, globex_delivery.contact, globex_delivery)
    into_acme = _token(world.acme.pk, nps, globex_delivery.contact, globex_delivery)
    forged = signing.Signer(key="not-the-secret", salt="personalisation.surveys.link").sign(value)
    for bad in (
        token[:-2],
        f"{value}:{signature[::-1]}",
        forged,
        value.replace(".", "x", 1) + ":" + signature,
        other_contact,
        other_team,  # acme's survey under globex's id
        into_acme,  # globex's message under acme's id
    ):
        response = client.post(f"/s/{bad}/", {"score": "9"})
        assert response.status_code == 404, bad
        assert "This link is not valid" in response.content.decode()
    assert not SurveyAnswer.objects.exists()
    assert client.get(f"/s/{token}/").status_code == 200


def test_the_link_is_signed_differently_from_messaging_s_links(
    nps: Any, delivery_factory: Any
) -> None:
    from messaging import links as message_links

    delivery = delivery_factory()
    with pytest.raises(signing.BadSignature):
        links.token_read(message_links.unsubscribe_url(delivery).rstrip("/").split("/")[-1])


def test_text_no_database_stores_and_odd_digits_are_refused_not_crashed_on(
    client: Any, nps: Any, delivery_factory: Any
) -> None:
    url = page_url(nps, delivery_factory())
    assert client.get(url + "?score=²").status_code == 200
    for body in ({"score": "²"}, {"score": "9", "comment": "nul \x00 here"}):
        response = client.post(url, body)
        assert response.status_code == 400, body
    assert "cannot be stored" in response.content.decode()
    assert not SurveyAnswer.objects.exists()
