"""Personas found in a shop with three planted groups of behaviour: the groups come back whole,
described in words that match what they did, with their figures; the same contacts give the same
personas; a marketer's number of personas is kept; too few contacts, or contacts that all behave
alike, get an explanation instead of personas; another team's contacts never count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audience.models import Contact, Order
from messaging import outcomes
from personalisation.personas import features, services
from personalisation.personas.models import PersonaRun

Planted = Callable[..., dict[str, list[int]]]


def run_now(tenant: Any, user: Any = None, k: int | None = None) -> PersonaRun:
    run = services.persona_run_request(tenant=tenant, user=user, k=k)
    return services.persona_run_execute(tenant=tenant, run=run)


def persona_of(run: PersonaRun, ids: list[int]) -> dict[str, Any]:
    """The persona that holds most of `ids`."""
    wanted = set(ids)
    best = max(run.clusters, key=lambda c: len(wanted & set(run.members[str(c["index"])])))
    return best


def test_it_finds_the_three_planted_groups_and_describes_them(world: Any, planted: Planted) -> None:
    groups = planted(world.acme)

    run = run_now(world.acme, world.dave)

    assert run.status == PersonaRun.Status.DONE
    assert run.k == 3, "the silhouette picks the number of groups that were planted"
    assert run.contacts_total == run.sample_size == 120
    assert run.silhouette is not None and run.silhouette > 0.5
    for name, ids in groups.items():
        persona = persona_of(run, ids)
        assert set(run.members[str(persona["index"])]) == set(ids), name
        assert persona["size"] == 40 and persona["share"] == pytest.approx(1 / 3, abs=0.01)

    tents = persona_of(run, groups["tents"])
    assert tents["label"] == "high-value, infrequent buyers of tents"
    assert 40 <= tents["figures"]["recency_days"] <= 80
    assert tents["figures"]["orders"] == 2 and tents["figures"]["top_category"] == "tents"
    assert tents["figures"]["revenue"] > 500 and tents["figures"]["open_rate"] is None

    browsers = persona_of(run, groups["browsers"])
    assert browsers["label"] == "new visitors who browse footwear but never bought"
    assert browsers["figures"]["orders"] == 0 and browsers["figures"]["revenue"] == 0
    assert browsers["figures"]["recency_days"] <= 3

    regulars = persona_of(run, groups["regulars"])
    assert "email-engaged" in regulars["label"] and "regulars" in regulars["label"]
    assert "cooking" in regulars["label"]
    assert regulars["figures"]["orders"] >= 5
    assert regulars["figures"]["open_rate"] >= 0.5
    assert "opens" in regulars["summary"] and "cooking" in regulars["summary"]

    for persona in run.clusters:  # each rule selects its persona and hardly anyone else
        assert persona["capture"]["captured"] >= 0.9
        assert persona["capture"]["spill"] <= 4
        assert persona["rules_words"]


def test_it_gives_the_same_personas_for_the_same_contacts(world: Any, planted: Planted) -> None:
    planted(world.acme)
    first = run_now(world.acme)
    second = run_now(world.acme)

    def shape(run: PersonaRun) -> list[tuple[str, int, Any]]:
        return [(c["label"], c["size"], c["rules"]) for c in run.clusters]

    assert shape(first) == shape(second)
    assert first.members == second.members


def test_it_makes_as_many_personas_as_the_marketer_asks(world: Any, planted: Planted) -> None:
    planted(world.acme)
    run = run_now(world.acme, k=5)

    assert run.status == PersonaRun.Status.DONE
    assert run.requested_k == 5 and run.k == 5 and len(run.clusters) == 5
    assert sum(c["size"] for c in run.clusters) == 120
    labels = [c["label"] for c in run.clusters]
    assert len(set(labels)) == 5, "personas described alike are told apart"


def test_it_explains_when_a_team_has_too_few_contacts(world: Any) -> None:
    for i in range(12):
        Contact.objects.create(tenant=world.acme, email=f"c{i}@example.com")

    run = run_now(world.acme)

    assert run.status == PersonaRun.Status.TOO_FEW
    assert "at least 50 contacts" in run.message and "has 12" in run.message
    assert run.clusters == []


def test_it_explains_when_every_contact_behaves_alike(world: Any) -> None:
    Contact.objects.bulk_create(
        Contact(tenant=world.acme, email=f"c{i}@example.com") for i in range(60)
    )

    run = run_now(world.acme)

    assert run.status == PersonaRun.Status.TOO_FEW
    assert "behave alike" in run.message


def test_it_never_reads_another_teams_contacts(world: Any, planted: Planted) -> None:
    theirs = planted(world.globex, per_group=30, seed=9)
    ours = planted(world.acme)

    run = run_now(world.acme)

    clustered = {pk for ids in run.members.values() for pk in ids}
    assert clustered == {pk for ids in ours.values() for pk in ids}
    assert not clustered & {pk for ids in theirs.values() for pk in ids}
    assert run.contacts_total == 120
    # Asked for another team's contacts by id, the reader finds nothing.
    globex_ids = [pk for ids in theirs.values() for pk in ids]
    assert (
        features.behaviour_read(tenant=world.acme, contact_ids=globex_ids, now=timezone.now()) == []
    )


def test_it_reads_behaviour_as_segment_conditions_count_it(world: Any, planted: Planted) -> None:
    groups = planted(world.acme, per_group=2)
    now = timezone.now()
    regular = features.behaviour_read(
        tenant=world.acme, contact_ids=groups["regulars"][:1], now=now
    )[0]
    assert regular.orders >= 5 and regular.revenue > 100
    assert regular.bought["cooking"] == regular.orders  # the whole order history
    # Views only over the window (each order here follows a view of the product).
    recent = Order.objects.filter(
        tenant=world.acme,
        contact_id=regular.contact_id,
        occurred_at__gte=now - timedelta(days=features.BEHAVIOUR_DAYS),
    ).count()
    assert 0 < recent < regular.orders
    assert regular.views["cooking"] == recent
    assert regular.events[features.EMAIL_SENT] >= 6
    assert 0 < regular.open_rate <= 1


def test_its_channel_event_names_are_messagings() -> None:
    assert features.EMAIL_SENT == outcomes.EMAIL_SENT
    assert features.EMAIL_OPENED == outcomes.EMAIL_OPENED
    assert features.EMAIL_CLICKED == outcomes.EMAIL_CLICKED
    assert features.PUSH_SENT == outcomes.PUSH_SENT
    assert features.PUSH_CLICKED == outcomes.PUSH_CLICKED


def test_it_refuses_a_second_run_while_one_is_in_progress(world: Any) -> None:
    from django.core.exceptions import ValidationError

    services.persona_run_request(tenant=world.acme, user=None)
    with pytest.raises(ValidationError, match="in progress"):
        services.persona_run_request(tenant=world.acme, user=None)
    # Another team is not held up by it.
    services.persona_run_request(tenant=world.globex, user=None)


def test_it_runs_a_queued_run_once(world: Any, planted: Planted) -> None:
    planted(world.acme, per_group=20)
    run = services.persona_run_request(tenant=world.acme, user=None)
    services.persona_run_execute(tenant=world.acme, run=run)
    finished = run.finished_at
    again = services.persona_run_execute(tenant=world.acme, run=run)
    assert again.status == PersonaRun.Status.DONE and again.finished_at == finished


def test_it_reads_the_same_behaviour_by_probes_and_by_one_pass(
    world: Any, planted: Planted
) -> None:
    groups = planted(world.acme, per_group=10)
    ids = sorted(pk for group in groups.values() for pk in group)[::2]
    now = timezone.now()
    probed = features.behaviour_read(tenant=world.acme, contact_ids=ids, now=now, scan=False)
    scanned = features.behaviour_read(tenant=world.acme, contact_ids=ids, now=now, scan=True)
    assert probed == scanned and [b.contact_id for b in scanned] == ids


def test_a_big_team_is_clustered_on_a_sample_and_sized_for_the_whole(
    world: Any, planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = planted(world.acme)
    monkeypatch.setattr(services, "SAMPLE_MAX", 60)

    run = run_now(world.acme)

    assert run.status == PersonaRun.Status.DONE
    assert run.contacts_total == 120 and run.sample_size == 60
    clustered = [pk for ids in run.members.values() for pk in ids]
    assert len(clustered) == len(set(clustered)) == 60
    assert sum(c["sample"] for c in run.clusters) == 60
    assert sum(c["size"] for c in run.clusters) == pytest.approx(120, abs=run.k)
    tents = persona_of(run, groups["tents"])
    assert "buyers of tents" in tents["label"]
