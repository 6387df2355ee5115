"""{{ surveys.<key>.url }} and the one-click score links in a message: signed for the message's
contact and delivery, sample values for the editor, and nothing read when no template asks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.context import contexts_build
from messaging.models import Channel, Template
from messaging.previews import delivery_preview
from messaging.rendering import template_errors
from personalisation.surveys import links
from personalisation.surveys.models import SurveyAnswer

pytestmark = pytest.mark.django_db


def test_an_email_holds_a_row_of_signed_one_click_scores(
    client: Any, world: Any, nps: Any, delivery_factory: Any
) -> None:
    delivery = delivery_factory()
    html = delivery_preview(delivery=delivery).email.html
    urls = re.findall(r'<a href="([^"]+)">(\d+)</a>', html)
    assert [score for _, score in urls] == [str(n) for n in range(11)]
    url, _ = urls[9]
    assert url.startswith(f"{settings.SITE_URL}/s/") and url.endswith("/?score=9")
    ref = links.token_read(url.split("/s/")[1].split("/")[0])
    assert ref == links.SurveyRef(
        world.acme.pk, nps.public_id, delivery.contact.public_id, delivery.public_id
    )
    path = url.removeprefix(settings.SITE_URL)
    page = client.get(path).content.decode()
    assert '<input type="radio" name="score" value="9" checked>' in page
    assert client.post(path.split("?")[0], {"score": "9"}).status_code == 200
    assert SurveyAnswer.objects.get().contact == delivery.contact


def test_a_push_opens_the_survey_page(world: Any, nps: Any, delivery_factory: Any) -> None:
    delivery = delivery_factory(channel=Channel.PUSH)
    target = delivery_preview(delivery=delivery).push.target_url
    assert links.token_read(target.split("/s/")[1].rstrip("/")).send == delivery.public_id


def test_each_contact_gets_their_own_link(world: Any, nps: Any, delivery_factory: Any) -> None:
    one, two = delivery_factory(), delivery_factory()
    contexts = contexts_build([one, two])
    first, second = (contexts[d.pk]["surveys"]["customer_nps"]["url"] for d in (one, two))
    assert first != second
    assert links.token_read(first.split("/s/")[1].rstrip("/")).contact == one.contact.public_id


def test_the_editor_s_sample_validates_a_survey_template(world: Any, nps: Any) -> None:
    for channel, fields in (
        (Channel.EMAIL, {"subject": "Hi", "html": '<a href="{{ surveys.any_key.url }}">Go</a>'}),
        (
            Channel.PUSH,
            {"title": "Hi", "body": "Go", "target_url": "{{ surveys.customer_nps.url }}"},
        ),
    ):
        template = Template(tenant=world.acme, name=f"T {channel}", channel=channel, **fields)
        assert template_errors(template) == {}


def test_a_survey_of_another_team_or_a_closed_one_is_not_named(
    world: Any, nps: Any, delivery_factory: Any
) -> None:
    from personalisation.surveys import services

    services.survey_create(tenant=world.globex, name="Globex only", kind="nps", question="?")
    surveys = contexts_build([delivery := delivery_factory()])[delivery.pk]["surveys"]
    assert list(surveys) == ["customer_nps"]
    with pytest.raises(KeyError):
        surveys["globex_only"]
    services.survey_update(tenant=world.acme, survey=nps, active=False)
    assert list(contexts_build([delivery])[delivery.pk]["surveys"]) == []


def test_a_batch_whose_template_names_no_survey_reads_nothing_for_surveys(
    world: Any, nps: Any, delivery_factory: Any
) -> None:
    batch = [delivery_factory() for _ in range(3)]
    plain = Template.objects.create(
        tenant=world.acme, name="No survey", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
    )
    for d in batch:
        d.content = plain.snapshot()
    with CaptureQueriesContext(connection) as queries:
        contexts = contexts_build(batch)
    assert not [q for q in queries.captured_queries if "surveys_survey" in q["sql"]]
    assert all(contexts[d.pk]["surveys"] == {} for d in batch)
    for d in batch:
        d.content = d.template.snapshot()  # names surveys.customer_nps
    with CaptureQueriesContext(connection) as queries:
        contexts = contexts_build(batch)
    # Named: one query for the whole batch, a link per message.
    assert len([q for q in queries.captured_queries if "surveys_survey" in q["sql"]]) == 1
    assert len({contexts[d.pk]["surveys"]["customer_nps"]["url"] for d in batch}) == 3


def test_a_preview_without_a_message_links_to_a_placeholder(world: Any, nps: Any) -> None:
    from audience.models import Contact
    from messaging.context import context_for_contact, sample_context

    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    preview = context_for_contact(tenant=world.acme, contact=ann)["surveys"]
    assert preview["customer_nps"]["url"] == links.preview_url()
    assert sample_context(world.acme)["surveys"]["any_key"]["scores"][10]["url"].endswith(
        "/s/preview/?score=10"
    )
