"""The demo shop has two running journeys with people at several steps (`make run`)."""

from __future__ import annotations

from collections import Counter

import pytest

from journeys import services
from journeys.models import Enrollment, Journey, Step
from messaging.models import Delivery
from ops.demo import seed_demo

pytestmark = pytest.mark.django_db


def _seed():  # type: ignore[no-untyped-def]
    return seed_demo()  # `manage.py seed_demo`: ops.demo calls journeys.services.journey_demo_seed


def test_it_runs_two_live_journeys_with_people_at_several_steps() -> None:
    tenant = _seed()

    journeys = {j.preset: j for j in Journey.objects.filter(tenant=tenant)}
    assert set(journeys) == {"cart_abandonment", "onboarding_welcome"}
    assert {j.status for j in journeys.values()} == {"live"}

    cart = Enrollment.objects.filter(journey=journeys["cart_abandonment"])
    states = Counter(cart.values_list("state", flat=True))
    assert states["converted"] == 1
    assert states["failed"] == 1
    assert states["completed"] >= 1
    assert states["waiting"] + states["active"] >= 3
    open_at = set(cart.filter(state__in=["active", "waiting"]).values_list("node_key", flat=True))
    assert {"checkout_30m", "checkout_24h"} <= open_at
    converted = cart.get(state="converted")
    assert converted.revenue and converted.revenue > 0
    failed = cart.get(state="failed")
    assert (failed.node_key, failed.failure) == ("cart_push", "The push template no longer exists.")
    assert failed.version.number == 1 and failed.version.state == "archived"
    assert Step.objects.filter(enrollment=failed, result="failed").exists()

    onboarding = Enrollment.objects.filter(journey=journeys["onboarding_welcome"])
    at = set(onboarding.values_list("node_key", flat=True))
    assert len(at) >= 3, at
    assert onboarding.filter(state="converted").exists()
    assert onboarding.filter(state="completed").exists()
    # Messages were decided through the outbox, as the engine does.
    assert Delivery.objects.filter(tenant=tenant, source__startswith="journey:").exists()


def test_seeding_again_adds_nothing() -> None:
    tenant = _seed()
    counts = (
        Journey.objects.count(),
        Enrollment.objects.count(),
        Step.objects.count(),
        Delivery.objects.count(),
    )
    seed_demo()
    assert services.journey_demo_seed(tenant=tenant) == 0
    assert (
        Journey.objects.count(),
        Enrollment.objects.count(),
        Step.objects.count(),
        Delivery.objects.count(),
    ) == counts
