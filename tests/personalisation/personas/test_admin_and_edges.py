"""Operators' admin of persona runs, a lost run, and a failing one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from personalisation.personas import clustering, services
from personalisation.personas.models import PersonaRun

pytestmark = pytest.mark.django_db


def staff(login: Any, user: Any) -> Any:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="personas"))
    return login(user)


def test_operators_read_their_teams_runs_only(world: Any, login: Any) -> None:
    mine = PersonaRun.objects.create(tenant=world.acme, message="acme's run", members={"0": [1]})
    theirs = PersonaRun.objects.create(tenant=world.globex, message="globex's run")
    client = staff(login, world.alice)  # an admin of acme

    listing = client.get("/admin/personas/personarun/").content.decode()
    assert str(mine.public_id) in listing and str(theirs.public_id) not in listing
    page = client.get(f"/admin/personas/personarun/{mine.pk}/change/")
    assert page.status_code == 200 and "acme&#x27;s run" in page.content.decode()
    assert 'name="members"' not in page.content.decode()
    assert client.get(f"/admin/personas/personarun/{theirs.pk}/change/").status_code == 404


def test_a_run_lost_for_an_hour_is_failed_so_the_team_can_run_again(world: Any) -> None:
    lost = services.persona_run_request(tenant=world.acme, user=None)
    PersonaRun.objects.filter(pk=lost.pk).update(
        status=PersonaRun.Status.RUNNING, created_at=timezone.now() - timedelta(hours=2)
    )

    fresh = services.persona_run_request(tenant=world.acme, user=None)

    lost.refresh_from_db()
    assert lost.status == PersonaRun.Status.FAILED and "within an hour" in lost.message
    assert fresh.status == PersonaRun.Status.QUEUED


def test_a_run_that_fails_says_so_and_frees_the_team(
    world: Any, planted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted(world.acme, per_group=20)

    def broken(data: Any, *, k: int | None) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(clustering, "cluster", broken)
    run = services.persona_run_request(tenant=world.acme, user=None)
    with pytest.raises(RuntimeError):
        services.persona_run_execute(tenant=world.acme, run=run)

    run.refresh_from_db()
    assert run.status == PersonaRun.Status.FAILED and "out of memory" in run.message
    services.persona_run_request(tenant=world.acme, user=None)  # not refused
