"""The journeys admin: made from the ready-made journeys, paused and resumed, the draft's delays and
templates edited through the services, scoped to the operator's tenants and roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from audience.models import Contact
from journeys import presets, services
from journeys.models import Enrollment, Journey, JourneyVersion, Node, Step
from messaging.models import Template
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GRAPH = {
    "nodes": [
        {"key": "start", "kind": "trigger_api"},
        {"key": "wait", "kind": "wait_delay", "settings": {"amount": 2, "unit": "days"}},
        {"key": "mail", "kind": "action_email", "settings": {"template": ""}},
    ],
    "edges": [
        {"source": "start", "port": "next", "target": "wait"},
        {"source": "wait", "port": "next", "target": "mail"},
    ],
}


@pytest.fixture
def shop(world):  # type: ignore[no-untyped-def]
    welcome = Template.objects.create(
        tenant=world.acme, name="Welcome", channel="email", subject="Hi", html="<p>Hi</p>"
    )
    push = Template.objects.create(
        tenant=world.acme, name="Come back", channel="push", title="Hey", body="Back?"
    )
    graph = {**GRAPH, "nodes": [*GRAPH["nodes"][:2], _mail(str(welcome.public_id))]}
    acme = services.journey_create(tenant=world.acme, name="Acme onboarding", graph=graph)
    services.journey_publish(journey=acme)
    # Globex's journey names a template of Globex's own (publishing refuses another team's).
    cake = Template.objects.create(
        tenant=world.globex, name="Cake", channel="email", subject="Hi", html="<p>Cake</p>"
    )
    globex_graph = {**GRAPH, "nodes": [*GRAPH["nodes"][:2], _mail(str(cake.public_id))]}
    globex = services.journey_create(
        tenant=world.globex, name="Globex birthday", graph=globex_graph
    )
    ann = Contact.objects.create(tenant=world.acme, user_id="ann", email="ann@example.com")
    gus = Contact.objects.create(tenant=world.globex, user_id="gus", email="gus@example.com")
    return {
        "acme": acme,
        "globex": globex,
        "welcome": welcome,
        "push": push,
        "ann": ann,
        "gus": gus,
    }


def _mail(template: str) -> dict[str, Any]:
    return {"key": "mail", "kind": "action_email", "settings": {"template": template}}


@pytest.fixture
def superuser(login):  # type: ignore[no-untyped-def]
    return login(UserFactory(is_staff=True, is_superuser=True))


def staff(login, user):  # type: ignore[no-untyped-def]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="journeys"))
    return login(user)


@pytest.fixture
def staff_alice(login, world):  # type: ignore[no-untyped-def]
    return staff(login, world.alice)  # acme admin


@pytest.fixture
def staff_bob(login, world):  # type: ignore[no-untyped-def]
    return staff(login, world.bob)  # acme viewer


def draft_of(journey: Journey) -> JourneyVersion:
    return services.journey_draft_get_or_create(journey=journey)


def steps_form(version: JourneyVersion, **changes: dict[str, Any]) -> dict[str, Any]:
    """The version's change form as the admin renders it, with `changes` per node key."""
    nodes = list(Node.objects.filter(version=version).order_by("id"))
    data: dict[str, Any] = {
        "nodes-TOTAL_FORMS": len(nodes),
        "nodes-INITIAL_FORMS": len(nodes),
        "nodes-MIN_NUM_FORMS": 0,
        "nodes-MAX_NUM_FORMS": 1000,
    }
    for i, node in enumerate(nodes):
        row = {"id": node.pk, "version": version.pk, "label": node.label}
        if node.kind == "wait_delay":
            row |= {"delay_amount": node.settings["amount"], "delay_unit": node.settings["unit"]}
        if node.kind in ("action_email", "action_push"):
            row |= {
                "channel": node.kind.removeprefix("action_"),
                "template": node.settings.get("template", ""),
            }
        row |= changes.get(node.key, {})
        data |= {f"nodes-{i}-{name}": value for name, value in row.items()}
    return data


# --- the list and a journey -------------------------------------------------------------------


def test_it_lists_journeys_with_status_preset_live_version_and_people(
    superuser, world, shop
) -> None:
    version = JourneyVersion.objects.get(journey=shop["acme"], state="published")
    Enrollment.objects.create(
        tenant=world.acme,
        journey=shop["acme"],
        version=version,
        contact=shop["ann"],
        node_key="wait",
        state="waiting",
    )
    page = superuser.get("/admin/journeys/journey/").content.decode()
    assert "Acme onboarding" in page and "Globex birthday" in page
    assert "v1" in page  # the live version
    assert "Create from a ready-made journey" in page
    assert f'?journey={shop["acme"].pk}&amp;open=1">1</a>' in page
    live = superuser.get("/admin/journeys/journey/?status__exact=live").content.decode()
    assert "Acme onboarding" in live and "Globex birthday" not in live
    found = superuser.get("/admin/journeys/journey/?q=birthday").content.decode()
    assert "Globex birthday" in found and "Acme onboarding" not in found


def test_it_links_a_journey_to_the_editor_and_to_its_drafts_steps(superuser, world, shop) -> None:
    journey = shop["acme"]
    page = superuser.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()
    assert f'href="/t/acme/journeys/{journey.public_id}/"' in page
    assert "Start a draft" in page  # published, no draft yet
    draft = draft_of(journey)
    page = superuser.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()
    assert f"/admin/journeys/journeyversion/{draft.pk}/change/" in page


def test_it_renames_a_journey_through_the_service(superuser, world, shop) -> None:
    journey = shop["acme"]
    response = superuser.post(
        f"/admin/journeys/journey/{journey.pk}/change/",
        {
            "name": "Welcome series",
            "description": "New sign-ups",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    journey.refresh_from_db()
    assert (journey.name, journey.description, journey.status) == (
        "Welcome series",
        "New sign-ups",
        "live",
    )


# --- actions ------------------------------------------------------------------------------------


def test_it_pauses_and_resumes_journeys_and_says_which_it_could_not(superuser, world, shop) -> None:
    acme, globex = shop["acme"], shop["globex"]
    response = superuser.post(
        "/admin/journeys/journey/",
        {"action": "pause_journeys", "_selected_action": [acme.pk, globex.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Paused 1 journey(s)." in page
    assert "Globex birthday: Only a live journey can be paused." in page
    acme.refresh_from_db()
    assert acme.status == "paused"
    superuser.post(
        "/admin/journeys/journey/", {"action": "resume_journeys", "_selected_action": [acme.pk]}
    )
    acme.refresh_from_db()
    assert acme.status == "live"


# --- create from a ready-made journey -----------------------------------------------------------


def test_it_creates_a_journey_from_a_ready_made_one(superuser, world) -> None:
    # "Add" leads to the ready-made journeys.
    assert superuser.get("/admin/journeys/journey/add/")["Location"].endswith("/from-preset/")
    page = superuser.get("/admin/journeys/journey/from-preset/").content.decode()
    assert presets.PRESETS["onboarding_welcome"].name in page
    assert presets.PRESETS["birthday_coupon"].name in page
    response = superuser.post(
        "/admin/journeys/journey/from-preset/",
        {"tenant": world.acme.pk, "preset": "birthday_coupon"},
    )
    assert response.status_code == 302
    journey = Journey.objects.get(tenant=world.acme, preset="birthday_coupon")
    assert response["Location"] == f"/admin/journeys/journey/{journey.pk}/change/"
    assert journey.status == "draft"
    assert Node.objects.filter(version__journey=journey, kind="trigger_date").exists()
    refused = superuser.post(
        "/admin/journeys/journey/from-preset/", {"tenant": world.acme.pk, "preset": "nope"}
    )
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()


# --- the draft's steps --------------------------------------------------------------------------


def test_it_edits_a_delay_and_a_template_of_the_draft_through_the_service(
    superuser, world, shop
) -> None:
    journey = shop["acme"]
    draft = draft_of(journey)
    path = f"/admin/journeys/journeyversion/{draft.pk}/change/"
    page = superuser.get(path).content.decode()
    assert "Welcome (Email)" in page and "Come back (Web push)" in page
    response = superuser.post(
        path,
        steps_form(
            draft,
            wait={"delay_amount": 3, "delay_unit": "hours", "label": "Three hours"},
            mail={"channel": "push", "template": str(shop["push"].public_id)},
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    wait = Node.objects.get(version=draft, key="wait")
    assert (wait.label, wait.settings) == ("Three hours", {"amount": 3, "unit": "hours"})
    mail = Node.objects.get(version=draft, key="mail")
    assert mail.kind == "action_push"
    assert mail.settings["template"] == str(shop["push"].public_id)
    # The published version is as it was until the draft is published.
    published = Node.objects.get(version__journey=journey, version__state="published", key="wait")
    assert published.settings == {"amount": 2, "unit": "days"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"wait": {"delay_amount": ""}}, "is required"),
        ({"wait": {"delay_amount": 0}}, "at least 1"),
        (
            {"mail": {"channel": "email", "template": "push"}},
            "Choose an email template for an email step.",
        ),
        ({"mail": {"template": "00000000-0000-4000-8000-000000000000"}}, "Select a valid choice"),
    ],
)
def test_it_shows_a_refused_step_on_the_inline_and_saves_nothing(
    superuser, world, shop, changes, message
) -> None:
    draft = draft_of(shop["acme"])
    if changes.get("mail", {}).get("template") == "push":
        changes["mail"]["template"] = str(shop["push"].public_id)
    response = superuser.post(
        f"/admin/journeys/journeyversion/{draft.pk}/change/", steps_form(draft, **changes)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Node.objects.get(version=draft, key="wait").settings == {"amount": 2, "unit": "days"}
    assert Node.objects.get(version=draft, key="mail").kind == "action_email"


def test_it_shows_published_steps_read_only(superuser, world, shop) -> None:
    published = JourneyVersion.objects.get(journey=shop["acme"], state="published")
    page = superuser.get(f"/admin/journeys/journeyversion/{published.pk}/change/").content.decode()
    assert "nodes-0-delay_amount" not in page
    assert "Wait" in page


# --- enrollments --------------------------------------------------------------------------------


def test_it_shows_enrollments_read_only_with_their_step_log(superuser, world, shop) -> None:
    version = JourneyVersion.objects.get(journey=shop["acme"], state="published")
    enrollment = Enrollment.objects.create(
        tenant=world.acme,
        journey=shop["acme"],
        version=version,
        contact=shop["ann"],
        node_key="mail",
        state="failed",
        failure="The email template no longer exists.",
    )
    Step.objects.create(
        tenant=world.acme,
        enrollment=enrollment,
        version=version,
        node_key="wait",
        result="followed",
        port="next",
    )
    listed = superuser.get("/admin/journeys/enrollment/?state__exact=failed").content.decode()
    assert "ann@example.com" in listed and "The email template no longer exists." in listed
    by_journey = superuser.get(f"/admin/journeys/enrollment/?journey={shop['globex'].pk}")
    assert "ann@example.com" not in by_journey.content.decode()
    page = superuser.get(f"/admin/journeys/enrollment/{enrollment.pk}/change/").content.decode()
    assert "Followed a port" in page
    assert 'name="_save"' not in page


# --- tenancy and roles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "own", "other"),
    [
        ("/admin/journeys/journey/", "Acme onboarding", "Globex birthday"),
        ("/admin/journeys/journeyversion/", "Acme onboarding v1", "Globex birthday v1"),
        ("/admin/journeys/journey/from-preset/", ">Acme<", ">Globex<"),  # the tenant choices
        ("/admin/journeys/enrollment/", "Acme onboarding (acme)", "Globex birthday"),
    ],
)
def test_it_shows_staff_only_their_own_tenants(staff_alice, shop, path, own, other) -> None:
    page = staff_alice.get(path).content.decode()
    assert own in page
    assert other not in page


def test_it_hides_other_tenants_journeys_from_staff_by_id(staff_alice, world, shop) -> None:
    globex = shop["globex"]
    globex_draft = JourneyVersion.objects.get(journey=globex)
    assert staff_alice.get(f"/admin/journeys/journey/{globex.pk}/change/").status_code == 404
    assert (
        staff_alice.get(f"/admin/journeys/journeyversion/{globex_draft.pk}/change/").status_code
        == 404
    )
    assert staff_alice.get(f"/admin/journeys/journey/{shop['acme'].pk}/change/").status_code == 200
    # Nor can staff act on them, or make a journey in another tenant.
    services.journey_publish(journey=globex)
    staff_alice.post(
        "/admin/journeys/journey/", {"action": "pause_journeys", "_selected_action": [globex.pk]}
    )
    globex.refresh_from_db()
    assert globex.status == "live"
    response = staff_alice.post(
        "/admin/journeys/journey/from-preset/", {"tenant": world.globex.pk, "preset": "win_back"}
    )
    assert response.status_code == 200
    assert not Journey.objects.filter(tenant=world.globex, preset="win_back").exists()
    wait = Node.objects.get(version=globex_draft, key="wait")
    staff_alice.post(
        f"/admin/journeys/journeyversion/{globex_draft.pk}/change/",
        steps_form(globex_draft, wait={"delay_amount": 9}),
    )
    wait.refresh_from_db()
    assert wait.settings["amount"] == 2


def test_it_lets_a_viewer_look_but_not_change(staff_bob, world, shop) -> None:
    acme = shop["acme"]
    page = staff_bob.get(f"/admin/journeys/journey/{acme.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    staff_bob.post(
        "/admin/journeys/journey/", {"action": "pause_journeys", "_selected_action": [acme.pk]}
    )
    acme.refresh_from_db()
    assert acme.status == "live"
    draft = draft_of(acme)
    staff_bob.post(
        f"/admin/journeys/journeyversion/{draft.pk}/change/",
        steps_form(draft, wait={"delay_amount": 9}),
    )
    assert Node.objects.get(version=draft, key="wait").settings["amount"] == 2
    response = staff_bob.post(
        "/admin/journeys/journey/from-preset/", {"tenant": world.acme.pk, "preset": "win_back"}
    )
    assert response.status_code == 200
    assert not Journey.objects.filter(preset="win_back").exists()


def test_it_starts_a_draft_of_a_published_journey_to_edit_its_steps(superuser, world, shop) -> None:
    journey = shop["acme"]
    response = superuser.post(
        "/admin/journeys/journey/",
        {"action": "start_drafts", "_selected_action": [journey.pk]},
        follow=True,
    )
    assert "1 journey(s) have a draft to edit." in response.content.decode()
    draft = JourneyVersion.objects.get(journey=journey, state="draft")
    assert draft.number == 2
    assert set(Node.objects.filter(version=draft).values_list("key", flat=True)) == {
        "start",
        "wait",
        "mail",
    }
