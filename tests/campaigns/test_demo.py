"""The demo shop's campaigns (`make run`): a sent A/B test with a hold-out whose results page has
numbers, a weekly digest on a recurring schedule, a draft; seeding again adds nothing."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from audience.models import Event
from campaigns import selectors, services
from campaigns.models import Campaign, Occurrence, Recipient
from messaging.models import Delivery
from ops.demo import seed_demo

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_sent_ab_test_a_weekly_digest_and_a_draft() -> None:
    tenant = seed_demo()  # `manage.py seed_demo`: ops.demo calls campaign_demo_seed

    campaigns = {c.name: c for c in Campaign.objects.filter(tenant=tenant)}
    assert set(campaigns) == {"Spring sale", "Weekly picks", "Summer camping launch"}
    sale, digest, draft = (
        campaigns["Spring sale"],
        campaigns["Weekly picks"],
        campaigns["Summer camping launch"],
    )
    assert (sale.state, digest.state, draft.state) == ("sent", "scheduled", "draft")

    # The digest is a beat entry an operator sees: Mondays 09:00 in the team's zone.
    task = PeriodicTask.objects.get(pk=digest.periodic_task_id)
    assert task.enabled and task.task == "campaigns.tasks.recurring_fire"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "1")
    assert str(task.crontab.timezone) == "Europe/Berlin"
    assert digest.send_at is not None and digest.send_at > sale.send_at

    # The sale went out once, two days ago: every recipient but the hold-out has one message,
    # sent, and the winner went to the rest of the audience.
    occurrence = Occurrence.objects.get(campaign=sale)
    assert occurrence.state == "sent" and occurrence.winner is not None
    recipients = Recipient.objects.filter(occurrence=occurrence)
    assert recipients.filter(holdout=True).count() == occurrence.holdout_count > 0
    assert not recipients.filter(holdout=False, released=False).exists()
    sent = Delivery.objects.filter(tenant=tenant, source=f"campaign:{sale.public_id}")
    assert sent.count() == occurrence.recipient_count - occurrence.holdout_count
    assert set(sent.values_list("status", flat=True)) == {"sent"}
    assert not recipients.filter(holdout=True, delivery__isnull=False).exists()


def test_the_sent_campaigns_results_show_numbers_and_a_lift() -> None:
    tenant = seed_demo()
    sale = Campaign.objects.get(tenant=tenant, name="Spring sale")

    results = selectors.campaign_results(campaign=sale)

    assert results is not None
    a, b = results.variants
    assert (a.key, b.key) == ("A", "B")
    # B's subject line won the test on clicks, and the rest of the audience got B.
    assert b.winner and not a.winner
    assert b.recipients > a.recipients > 0
    for row in (a, b):
        assert row.sent == row.recipients
        assert 0 < row.opens < row.sent
        assert 0 < row.clicks < row.opens
        assert row.links and all(link.unique > 0 for link in row.links)
        assert row.conversions > 0 and row.revenue > 0
    assert results.total.bounces > 0
    assert results.total.unsubscribes > 0
    holdout = results.holdout
    assert holdout is not None and holdout.recipients > 0 and holdout.sent == 0
    assert holdout.conversions > 0  # some order without the email: the lift's baseline
    assert b.lift is not None and b.lift > 0
    assert results.series.peak > 0


def test_seeding_again_adds_nothing() -> None:
    tenant = seed_demo()

    def counts() -> tuple[int, ...]:
        return (
            Campaign.objects.count(),
            Occurrence.objects.count(),
            Recipient.objects.count(),
            Delivery.objects.count(),
            Event.objects.count(),
            PeriodicTask.objects.count(),
        )

    before = counts()
    seed_demo()
    assert services.campaign_demo_seed(tenant=tenant) == 0
    assert counts() == before
