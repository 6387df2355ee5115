"""The personas REST API (/api/v1/personas/…, secret key): request a run (202, then read it until
it is done), read its personas, save one as a segment (201); bad input is a 400 naming the field,
a second run while one runs a 409, another team's run a 404; the schema documents it all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from personalisation.personas import services
from personalisation.personas.models import PersonaRun
from segments.models import Segment
from tests.personalisation.personas.test_clustering import persona_of, run_now

Planted = Callable[..., dict[str, list[int]]]


def test_it_runs_through_the_task_and_reads_the_personas(
    world: Any,
    api: Any,
    planted: Planted,
    eager_tasks: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    planted(world.acme)
    with django_capture_on_commit_callbacks(execute=True):
        queued = api("post", "personas/runs/", {"k": 3})
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued" and queued.json()["requested_k"] == 3

    run = api("get", f"personas/runs/{queued.json()['id']}/").json()
    assert run["status"] == "done" and run["k"] == 3 and run["contacts_total"] == 120
    labels = {p["label"] for p in run["personas"]}
    assert "high-value, infrequent buyers of tents" in labels
    tents = next(p for p in run["personas"] if "tents" in p["label"])
    assert tents["size"] == 40 and tents["figures"]["top_category"] == "tents"
    assert tents["rules"]["type"] == "group" and tents["segment"] is None
    listed = api("get", "personas/runs/").json()
    assert [r["id"] for r in listed["results"]] == [run["id"]]


def test_it_saves_a_persona_as_a_segment(world: Any, api: Any, planted: Planted) -> None:
    groups = planted(world.acme)
    run = run_now(world.acme)
    index = persona_of(run, groups["regulars"])["index"]

    saved = api("post", f"personas/runs/{run.public_id}/personas/{index}/segment/", {})

    assert saved.status_code == 201
    body = saved.json()
    segment = Segment.objects.get(tenant=world.acme, public_id=body["id"])
    assert segment.name.startswith("Persona: Email-engaged")
    assert body["members"] == segment.member_count and body["captured"] >= 0.9
    assert body["outside"] <= 4
    read = api("get", f"personas/runs/{run.public_id}/").json()
    assert next(p for p in read["personas"] if p["index"] == index)["segment"]["id"] == body["id"]


def test_it_refuses_bad_input_with_field_errors(world: Any, api: Any, planted: Planted) -> None:
    answer = api("post", "personas/runs/", {"k": 40})
    assert answer.status_code == 400 and "k" in str(answer.json())
    assert api("post", "personas/runs/", {"k": "many"}).status_code == 400
    assert not PersonaRun.objects.exists()

    services.persona_run_request(tenant=world.acme, user=None)
    busy = api("post", "personas/runs/", {})
    assert busy.status_code == 409 and "in progress" in str(busy.json())

    planted(world.globex, per_group=20)
    done = run_now(world.globex)
    path = f"personas/runs/{done.public_id}/personas/"
    assert api("post", f"{path}99/segment/", {}, tenant=world.globex).status_code == 400
    taken = api("post", f"{path}0/segment/", {"name": "X"}, tenant=world.globex)
    assert taken.status_code == 201
    again = api("post", f"{path}1/segment/", {"name": "X"}, tenant=world.globex)
    assert again.status_code == 400 and "name" in str(again.json())


def test_another_teams_runs_are_404(world: Any, api: Any, planted: Planted) -> None:
    planted(world.globex, per_group=20)
    theirs = run_now(world.globex)

    assert api("get", f"personas/runs/{theirs.public_id}/").status_code == 404
    saving = api("post", f"personas/runs/{theirs.public_id}/personas/0/segment/", {})
    assert saving.status_code == 404
    assert api("get", "personas/runs/not-a-uuid/").status_code == 404
    assert api("get", "personas/runs/").json()["results"] == []
    assert not Segment.objects.exists()


def test_the_schema_documents_it(world: Any, client: Any) -> None:
    schema = client.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/v1/personas/runs/" in paths
    assert "/api/v1/personas/runs/{public_id}/" in paths
    assert "/api/v1/personas/runs/{public_id}/personas/{index}/segment/" in paths
    assert "409" in paths["/api/v1/personas/runs/"]["post"]["responses"]
