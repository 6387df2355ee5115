"""The personas page (/t/<slug>/personalisation/personas/): every member reads, marketers run and
save; a run goes through the Celery task (eager here: the worker's code without the broker; the
browser test runs a real worker); the run panel polls while it runs; a persona saved as a segment
holds mostly the persona's contacts; another team's runs are 404s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from personalisation.personas import services
from personalisation.personas.models import PersonaRun
from segments import selectors as segment_selectors
from segments.models import Segment
from tests.personalisation.personas.test_clustering import persona_of, run_now

Planted = Callable[..., dict[str, list[int]]]


def list_url(tenant: Any) -> str:
    return reverse("persona_list", args=[tenant.slug])


def run_url(run: PersonaRun) -> str:
    return reverse("persona_run_detail", args=[run.tenant.slug, run.public_id])


def save_url(run: PersonaRun, index: int) -> str:
    return reverse("persona_save", args=[run.tenant.slug, run.public_id, index])


def test_it_shows_an_empty_page_before_any_run(world: Any, login: Any) -> None:
    page = login(world.dave).get(list_url(world.acme))
    assert page.status_code == 200
    text = page.content.decode()
    assert "No personas yet" in text and "Find personas" in text
    assert 'action="/t/acme/personalisation/personas/run/"' in text


def test_a_marketer_runs_it_through_the_task_and_reads_the_personas(
    world: Any,
    login: Any,
    planted: Planted,
    eager_tasks: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    planted(world.acme)
    client = login(world.dave)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("persona_run_create", args=["acme"]), {"k": ""})
    run = PersonaRun.objects.get(tenant=world.acme)
    assert answer.status_code == 302 and answer["Location"] == run_url(run)
    assert run.status == PersonaRun.Status.DONE and run.requested_by == world.dave

    text = client.get(answer["Location"]).content.decode()
    assert "3 personas among 120 contacts" in text
    assert "High-value, infrequent buyers of tents" in text
    assert "New visitors who browse footwear but never bought" in text
    assert "Every contact was grouped." in text
    assert text.count("Save as segment") == 3
    assert "hx-trigger" not in text, "a finished run does not poll"
    # The list shows the latest run.
    assert (
        "High-value, infrequent buyers of tents"
        in client.get(list_url(world.acme)).content.decode()
    )


def test_a_running_run_polls_and_answers_htmx_with_its_panel(world: Any, login: Any) -> None:
    run = services.persona_run_request(tenant=world.acme, user=world.dave)
    client = login(world.bob)

    text = client.get(list_url(world.acme)).content.decode()
    assert "Finding personas…" in text
    assert f'hx-get="{run_url(run)}" hx-trigger="every 2s"' in text

    panel = client.get(run_url(run), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="persona-run")
    body = panel.content.decode()
    assert panel.status_code == 200 and "<html" not in body and 'id="persona-run"' in body
    assert "Finding personas…" in body
    assert "hx-swap-oob" not in body, "a viewer has no Find button to update"
    # A marketer's panel brings the Find button's state along (disabled while it runs).
    marketer = login(world.dave).get(
        run_url(run), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="persona-run"
    )
    assert 'id="persona-run-button" hx-swap-oob="true" disabled' in marketer.content.decode()


def test_a_viewer_reads_but_neither_runs_nor_saves(
    world: Any, login: Any, planted: Planted
) -> None:
    planted(world.acme, per_group=20)
    run = run_now(world.acme)
    client = login(world.bob)

    text = client.get(run_url(run)).content.decode()
    assert "A marketer of the team can run this" in text
    assert "Save as segment" not in text and "buyers of tents" in text
    assert client.post(reverse("persona_run_create", args=["acme"]), {}).status_code == 403
    assert client.post(save_url(run, 0), {"name": "Mine"}).status_code == 403
    assert PersonaRun.objects.filter(tenant=world.acme).count() == 1
    assert not Segment.objects.filter(tenant=world.acme).exists()


def test_a_bad_number_of_personas_is_a_form_error(world: Any, login: Any) -> None:
    answer = login(world.dave).post(reverse("persona_run_create", args=["acme"]), {"k": "99"})
    assert answer.status_code == 400
    assert "Select a valid choice" in answer.content.decode()
    assert not PersonaRun.objects.exists()


def test_a_second_run_while_one_runs_is_refused_with_a_message(world: Any, login: Any) -> None:
    services.persona_run_request(tenant=world.acme, user=world.dave)
    answer = login(world.dave).post(reverse("persona_run_create", args=["acme"]), {"k": "4"})
    assert answer.status_code == 400
    assert "A run is in progress already" in answer.content.decode()
    assert PersonaRun.objects.filter(tenant=world.acme).count() == 1


def test_too_few_contacts_get_an_explanation_on_the_page(world: Any, login: Any) -> None:
    run = run_now(world.acme)
    text = login(world.dave).get(run_url(run)).content.decode()
    assert "Not enough to group yet" in text
    assert "needs at least 50 contacts; this team has 0" in text


def test_saving_a_persona_makes_a_live_segment_of_mostly_its_contacts(
    world: Any, login: Any, planted: Planted
) -> None:
    groups = planted(world.acme)
    run = run_now(world.acme)
    tents = persona_of(run, groups["tents"])
    client = login(world.dave)

    answer = client.post(save_url(run, tents["index"]), {"name": ""})

    assert answer.status_code == 302
    segment = Segment.objects.get(tenant=world.acme)
    assert segment.name == "Persona: High-value, infrequent buyers of tents"
    assert segment.rules == tents["rules"]
    members = set(
        segment_selectors.segment_members(tenant=world.acme, segment=segment).values_list(
            "pk", flat=True
        )
    )
    cluster = set(groups["tents"])
    assert len(members & cluster) >= 0.9 * len(cluster), "the segment holds most of the persona"
    assert len(members - cluster) <= 0.1 * len(members), "and hardly anyone else"
    run.refresh_from_db()
    saved = next(c for c in run.clusters if c["index"] == tents["index"])["segment"]
    assert saved["id"] == str(segment.public_id) and saved["members"] == len(members)
    assert saved["captured"] == pytest.approx(len(members & cluster) / len(cluster))
    assert saved["outside"] == len(members - cluster)

    text = client.get(answer["Location"]).content.decode()
    assert f'Saved as <a href="/t/acme/segments/{segment.public_id}/">' in text
    assert text.count("Save as segment") == 2


def test_saving_under_a_taken_name_keeps_the_input_and_says_why(
    world: Any, login: Any, planted: Planted
) -> None:
    planted(world.acme, per_group=20)
    run = run_now(world.acme)
    client = login(world.dave)
    assert client.post(save_url(run, 0), {"name": "Best"}).status_code == 302

    answer = client.post(save_url(run, 1), {"name": "Best"})

    assert answer.status_code == 400
    text = answer.content.decode()
    assert "A segment with this name exists already." in text
    assert 'id="name-1" name="name" maxlength="200" value="Best"' in text
    assert Segment.objects.filter(tenant=world.acme).count() == 1
    assert client.post(save_url(run, 9), {"name": "X"}).status_code == 400


def test_another_teams_runs_are_404(world: Any, login: Any, planted: Planted) -> None:
    planted(world.globex, per_group=20)
    theirs = run_now(world.globex)
    client = login(world.dave)
    acme_detail = reverse("persona_run_detail", args=["acme", theirs.public_id])
    acme_save = reverse("persona_save", args=["acme", theirs.public_id, 0])

    assert client.get(acme_detail).status_code == 404
    assert client.post(acme_save, {"name": "Stolen"}).status_code == 404
    assert not Segment.objects.exists()
    # Their own pages are not ours to see either, and our empty list shows nothing of theirs.
    assert client.get(run_url(theirs)).status_code == 404
    text = client.get(list_url(world.acme)).content.decode()
    assert "No personas yet" in text and "buyers" not in text
