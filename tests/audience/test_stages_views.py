"""Settings → Lifecycle stages: everyone reads the rules, admins change them, with clear field
errors; saving re-evaluates the team."""

from __future__ import annotations

import pytest

from audience.models import Contact, Event, LifecycleStage, StageRules
from audience.selectors import STAGE_CHANGED

pytestmark = pytest.mark.django_db

URL = "/t/acme/settings/lifecycle/"

VALID = {
    "onboarding_days": "14",
    "active_days": "120",
    "drifting_days": "45",
    "advocacy_days": "90",
    "promoter_min_score": "10",
    "nps_events": "NPS Submitted\n\n  Rated Us  \n",
    "advocacy_events": "Product Reviewed",
}


def test_it_describes_the_rules_in_plain_words_with_the_counts(world, login) -> None:
    Contact.objects.create(tenant=world.acme, email="a@example.com", lifecycle_stage="engagement")
    Contact.objects.create(tenant=world.globex, email="g@example.com", lifecycle_stage="engagement")
    page = login(world.bob).get(URL)  # a viewer reads
    assert page.status_code == 200
    html = page.content.decode()
    assert "not seen for 60 days" in html
    assert "scored 9 or more" in html and "“NPS Submitted” or “Survey Answered”" in html
    assert "less than 30 days old" in html and "in the last 90 days" in html
    assert "Lifecycle Stage Changed" in html
    counts = html[html.index('id="stage-counts"') :]
    assert '<th scope="row">Engagement</th><td>1</td>' in counts
    assert '<th scope="row">All contacts</th><td>1</td>' in counts
    assert (
        "Only admins and owners can change these." in html
        and '<form method="post" action="/t/acme/settings/lifecycle/#rules"' not in html
    )


def test_an_admin_changes_the_rules_and_the_team_is_re_evaluated(
    world, login, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = login(world.alice).post(URL, VALID)
    assert response.status_code == 302 and response["Location"] == URL
    rules = StageRules.objects.get(tenant=world.acme)
    assert (rules.onboarding_days, rules.active_days, rules.drifting_days) == (14, 120, 45)
    assert (rules.advocacy_days, rules.promoter_min_score) == (90, 10)
    assert rules.nps_events == ["NPS Submitted", "Rated Us"]
    assert rules.advocacy_events == ["Product Reviewed"]
    ann.refresh_from_db()
    assert ann.lifecycle_stage == LifecycleStage.ACQUISITION  # re-evaluated: ann is known
    assert Event.objects.filter(tenant=world.acme, contact=ann, name=STAGE_CHANGED).count() == 1
    html = login(world.alice).get(URL).content.decode()
    assert "not seen for 45 days" in html and "“NPS Submitted” or “Rated Us”" in html
    # Saved again: still one row.
    login(world.alice).post(URL, {**VALID, "onboarding_days": "20"})
    assert StageRules.objects.get(tenant=world.acme).onboarding_days == 20


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("onboarding_days", "0", "Give a number of days from 1 to 3650."),
        ("drifting_days", "4000", "Give a number of days from 1 to 3650."),
        ("active_days", "", "This field is required."),
        ("promoter_min_score", "11", "Give a score from 0 to 10."),
        ("advocacy_events", "\n".join(f"E{i}" for i in range(21)), "List up to 20 event names"),
        ("nps_events", "x" * 201, "each at most 200 characters"),
    ],
)
def test_it_names_the_field_in_error(world, login, field, value, message) -> None:
    response = login(world.alice).post(URL, {**VALID, field: value})
    assert response.status_code == 400
    html = response.content.decode()
    errors = html[html.index(f'id="id_{field}_errors"') :]
    assert message in errors[: errors.index("</ul>")]
    assert not StageRules.objects.filter(tenant=world.acme).exists()


@pytest.mark.parametrize("user", ["bob", "dave"])
def test_a_viewer_or_marketer_cannot_change_the_rules(world, login, user) -> None:
    response = login(getattr(world, user)).post(URL, VALID)
    assert response.status_code == 403
    assert not StageRules.objects.filter(tenant=world.acme).exists()


def test_another_team_cannot_see_or_change_them(world, login) -> None:
    client = login(world.charlie)
    assert client.get(URL).status_code == 404
    assert client.post(URL, VALID).status_code == 404
    assert not StageRules.objects.exists()
