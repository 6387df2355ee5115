"""Personalisation → Surveys pages: the list, the form (marketers build, viewers read), the
results (NPS, distribution, channels, weeks, comments), and another team's surveys unknown."""

from __future__ import annotations

import re
from typing import Any

import pytest

from personalisation.surveys.models import Survey
from tests.personalisation.surveys.conftest import page_url

pytestmark = pytest.mark.django_db


def base(tenant: str = "acme") -> str:
    return f"/t/{tenant}/personalisation/surveys/"


def test_the_list_says_when_there_are_no_surveys(login: Any, world: Any) -> None:
    html = login(world.dave).get(base()).content.decode()
    assert "No surveys yet." in html and "New survey" in html
    viewer = login(world.bob).get(base()).content.decode()
    assert "A marketer of the team can create one." in viewer and "New survey" not in viewer


def test_the_list_shows_each_survey_with_its_template_name_and_answers(
    login: Any, world: Any, nps: Any, client: Any, delivery_factory: Any
) -> None:
    client.post(page_url(nps, delivery_factory()), {"score": "9"})
    html = login(world.bob).get(base()).content.decode()
    row = re.search(rf'<tr id="survey-{nps.public_id}">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert "Customer NPS" in cells[0] and cells[1] == "NPS"
    assert cells[2] == "1" and "open" in cells[3]
    assert "{{ surveys.customer_nps.url }}" in cells[4]


def test_a_marketer_creates_a_short_survey_without_javascript(login: Any, world: Any) -> None:
    client = login(world.dave)
    response = client.post(
        base() + "new/",
        {
            "name": "Returns",
            "kind": "short",
            "question": "About your return",
            "q1_type": "choice",
            "q1_label": "Why?",
            "q1_choices": "Too small\nToo big\n",
            "q3_type": "text",
            "q3_label": "Anything else?",
            "active": "on",
        },
    )
    survey = Survey.objects.get(tenant=world.acme, name="Returns")
    assert response.status_code == 302 and response["Location"] == f"{base()}{survey.public_id}/"
    assert survey.questions == [
        {"id": "q1", "type": "choice", "label": "Why?", "choices": ["Too small", "Too big"]},
        {"id": "q2", "type": "text", "label": "Anything else?", "choices": []},
    ]
    assert survey.key == "returns" and survey.active


def test_the_form_shows_errors_and_keeps_what_was_typed(login: Any, world: Any) -> None:
    response = login(world.dave).post(
        base() + "new/",
        {
            "name": "Returns",
            "kind": "short",
            "question": "",
            "q2_type": "choice",
            "q2_label": "Size right?",
            "q2_choices": "Yes",
        },
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in html  # the question
    assert "Give 2 to 10 different choices." in html
    assert 'value="Returns"' in html and 'value="Size right?"' in html
    assert not Survey.objects.exists()


def test_a_viewer_reads_the_form_but_cannot_change_anything(
    login: Any, world: Any, nps: Any
) -> None:
    client = login(world.bob)
    html = client.get(f"{base()}{nps.public_id}/edit/").content.decode()
    assert "Only marketers of the team can create or change surveys." in html
    assert re.search(r'<input type="text" name="name"[^>]* disabled', html)
    assert client.post(f"{base()}{nps.public_id}/edit/", {"name": "Hacked"}).status_code == 403
    assert client.post(base() + "new/", {"name": "X", "kind": "nps"}).status_code == 403
    assert client.post(f"{base()}{nps.public_id}/delete/").status_code == 403
    nps.refresh_from_db()
    assert nps.name == "Customer NPS"


def test_a_marketer_edits_and_deletes_a_survey(login: Any, world: Any, nps: Any) -> None:
    client = login(world.dave)
    response = client.post(
        f"{base()}{nps.public_id}/edit/",
        {"name": "NPS 2027", "question": "Would you recommend us?", "key": "nps"},
    )
    assert response.status_code == 302
    nps.refresh_from_db()
    assert (nps.name, nps.key, nps.active) == ("NPS 2027", "nps", False)  # unticked: closed
    assert client.post(f"{base()}{nps.public_id}/delete/").status_code == 302
    assert not Survey.objects.exists()


def test_the_results_page_shows_nps_distribution_channels_and_comments(
    login: Any, world: Any, nps: Any, client: Any, delivery_factory: Any
) -> None:
    for score, channel, comment in (
        (10, "email", "Love it"),
        (9, "push", ""),
        (8, "email", ""),
        (3, "email", "Too slow"),
    ):
        client.post(
            page_url(nps, delivery_factory(channel=channel)), {"score": score, "comment": comment}
        )
    html = login(world.bob).get(f"{base()}{nps.public_id}/").content.decode()
    assert '<dd id="nps-score">25</dd>' in html  # 50% promoters - 25% detractors
    assert "<dd>50%</dd>" in html and "<dd>25%</dd>" in html
    rows = re.findall(r'<tr id="channel-(\w+)"><td>[^<]+</td><td>(\d+)</td><td>(-?\d+)</td>', html)
    assert rows == [("email", "3", "0"), ("push", "1", "100")]
    assert "Love it" in html and "Too slow" in html
    assert html.index("Too slow") < html.index("Love it")  # newest first
    assert "{{ surveys.customer_nps.url }}" in html
    assert "Delete survey" not in html  # a viewer


def test_the_results_page_of_a_survey_without_answers(login: Any, world: Any, short: Any) -> None:
    html = login(world.dave).get(f"{base()}{short.public_id}/?days=all").content.decode()
    assert "No answers in this period yet." in html


def test_the_short_survey_results_count_each_question(
    login: Any, world: Any, short: Any, client: Any, delivery_factory: Any
) -> None:
    for q1, q2 in (("Friend", "5"), ("Friend", "3"), ("Search", "4")):
        client.post(page_url(short, delivery_factory()), {"q1": q1, "q2": q2})
    html = login(world.dave).get(f"{base()}{short.public_id}/").content.decode()
    assert "Average 4.0 of 5" in html
    assert "<span>Friend</span>" in html and "2 · 67%" in html


def test_another_team_s_surveys_are_not_found(login: Any, world: Any, nps: Any) -> None:
    client = login(world.charlie)
    for suffix in ("", "edit/"):
        assert client.get(f"{base('globex')}{nps.public_id}/{suffix}").status_code == 404
    assert client.post(f"{base('globex')}{nps.public_id}/delete/").status_code == 404
    assert client.get(f"{base()}{nps.public_id}/").status_code in (403, 404)  # not a member
    assert Survey.objects.filter(pk=nps.pk).exists()


def test_the_results_and_the_list_cost_the_same_queries_however_many_answers(
    login: Any, world: Any, nps: Any, client: Any, delivery_factory: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    viewer = login(world.bob)

    def cost(path: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert viewer.get(path).status_code == 200
        return len(queries.captured_queries)

    pages = (base(), f"{base()}{nps.public_id}/?days=all")
    for n in range(2):
        client.post(page_url(nps, delivery_factory()), {"score": n, "comment": f"c{n}"})
    [cost(p) for p in pages]  # the session's first request pays for itself
    few = [cost(p) for p in pages]
    for _ in range(8):
        client.post(page_url(nps, delivery_factory(channel="push")), {"score": 10, "comment": "x"})
    assert [cost(p) for p in pages] == few
