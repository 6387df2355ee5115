"""The campaigns admin: operators see each campaign's team, state and schedule, its recurring
schedule's beat entry, and its occurrences and recipients read-only; pause, resume and cancel go
through the services; staff see and act only within their own tenants and roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Occurrence, Recipient
from tests.campaigns.conftest import campaign_make
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(world):  # type: ignore[no-untyped-def]
    weekly = campaign_make(
        world,
        name="Weekly digest",
        schedule="recurring",
        cron_minute="0",
        cron_hour="9",
        cron_day_of_week="1",
    )
    weekly = services.campaign_schedule(campaign=weekly)
    launch = campaign_make(world, name="Spring launch")
    cake = campaign_make(world, tenant=world.globex, name="Globex cake day")
    return {"weekly": weekly, "launch": launch, "cake": cake}


def occurrence_of(campaign: Campaign, *, frozen: int = 0) -> Occurrence:
    """An occurrence as dispatch starts it, with its first members frozen (not released)."""
    from campaigns.models import CampaignSegment
    from segments.models import SegmentMembership

    segment = CampaignSegment.objects.filter(campaign=campaign, exclude=False).first()
    assert segment is not None
    contacts = [
        m.contact
        for m in SegmentMembership.objects.filter(segment_id=segment.segment_id).select_related(
            "contact"
        )[:frozen]
    ]
    occurrence = Occurrence.objects.create(
        tenant=campaign.tenant, campaign=campaign, key="once", recipient_count=len(contacts)
    )
    variant = campaign.variants.first()
    Recipient.objects.bulk_create(
        Recipient(
            tenant=campaign.tenant,
            occurrence=occurrence,
            contact=c,
            variant=variant,
            due_at=timezone.now(),
        )
        for c in contacts
    )
    return occurrence


@pytest.fixture
def superuser(login):  # type: ignore[no-untyped-def]
    return login(UserFactory(is_staff=True, is_superuser=True))


def staff(login, user):  # type: ignore[no-untyped-def]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns"))
    return login(user)


@pytest.fixture
def staff_alice(login, world):  # type: ignore[no-untyped-def]
    return staff(login, world.alice)  # acme admin


@pytest.fixture
def staff_bob(login, world):  # type: ignore[no-untyped-def]
    return staff(login, world.bob)  # acme viewer


def sending(campaign: Campaign) -> Campaign:
    """Where dispatch takes a scheduled campaign when its time comes."""
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENDING)
    campaign.refresh_from_db()
    return campaign


# --- the list and a campaign ----------------------------------------------------------------------


def test_it_lists_campaigns_with_their_team_state_and_schedule(superuser, world, shop) -> None:
    page = superuser.get("/admin/campaigns/campaign/").content.decode()
    assert "Weekly digest" in page and "Spring launch" in page and "Globex cake day" in page
    assert "Recurring: 0 9 * * 1" in page
    assert ">Scheduled<" in page and ">Draft<" in page
    scheduled = superuser.get("/admin/campaigns/campaign/?state__exact=scheduled")
    assert "Weekly digest" in scheduled.content.decode()
    assert "Spring launch" not in scheduled.content.decode()
    found = superuser.get("/admin/campaigns/campaign/?q=cake").content.decode()
    assert "Globex cake day" in found and "Weekly digest" not in found


def test_it_links_a_recurring_campaign_to_its_beat_entry(superuser, world, shop) -> None:
    weekly = shop["weekly"]
    assert weekly.periodic_task is not None
    page = superuser.get(f"/admin/campaigns/campaign/{weekly.pk}/change/").content.decode()
    link = f"/admin/django_celery_beat/periodictask/{weekly.periodic_task.pk}/change/"
    assert link in page and "(enabled)" in page
    assert f'href="/t/acme/campaigns/{weekly.public_id}/"' in page  # the campaign in the app
    beat = superuser.get(link)
    assert beat.status_code == 200
    assert "campaigns.tasks.recurring_fire" in beat.content.decode()
    # Its audience and variant show on the campaign, read-only.
    variant = weekly.variants.get()
    segment = weekly.segments.get()
    assert variant.template.name in page and segment.segment.name in page
    assert 'name="variants-0-weight"' not in page


def test_it_shows_occurrences_and_their_recipients_read_only(superuser, world, shop) -> None:
    launch = sending(shop["launch"])
    occurrence = occurrence_of(launch, frozen=2)
    page = superuser.get(f"/admin/campaigns/campaign/{launch.pk}/change/").content.decode()
    assert f"/admin/campaigns/occurrence/{occurrence.pk}/change/" in page
    detail = superuser.get(f"/admin/campaigns/occurrence/{occurrence.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert 'name="_save"' not in body
    assert f"/admin/campaigns/recipient/?occurrence={occurrence.pk}" in body
    recipients = superuser.get(f"/admin/campaigns/recipient/?occurrence={occurrence.pk}")
    listed = recipients.content.decode()
    assert listed.count("@example.com") == 2
    assert "Spring launch (once)" in listed
    recipient = Recipient.objects.filter(occurrence=occurrence).first()
    assert recipient is not None
    one = superuser.get(f"/admin/campaigns/recipient/{recipient.pk}/change/").content.decode()
    assert 'name="_save"' not in one
    assert superuser.get("/admin/campaigns/recipient/add/").status_code == 403


# --- actions --------------------------------------------------------------------------------------


def test_it_pauses_resumes_and_cancels_through_the_services(superuser, world, shop) -> None:
    launch = sending(shop["launch"])
    response = superuser.post(
        "/admin/campaigns/campaign/",
        {"action": "pause_campaigns", "_selected_action": [launch.pk, shop["weekly"].pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Paused 1 campaign(s)." in page
    assert "Weekly digest: Only a campaign that is sending can be paused." in page
    launch.refresh_from_db()
    assert (launch.state, launch.paused_at is not None) == ("paused", True)
    superuser.post(
        "/admin/campaigns/campaign/",
        {"action": "resume_campaigns", "_selected_action": [launch.pk]},
    )
    launch.refresh_from_db()
    assert launch.state == "sending"
    superuser.post(
        "/admin/campaigns/campaign/",
        {"action": "cancel_campaigns", "_selected_action": [shop["weekly"].pk]},
    )
    weekly = Campaign.objects.get(pk=shop["weekly"].pk)
    assert weekly.state == "cancelled"


def test_it_has_no_add_or_delete(superuser, world, shop) -> None:
    assert superuser.get("/admin/campaigns/campaign/add/").status_code == 403
    launch = shop["launch"]
    assert superuser.get(f"/admin/campaigns/campaign/{launch.pk}/delete/").status_code == 403
    assert Campaign.objects.filter(pk=launch.pk).exists()


# --- tenancy and roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "own", "other"),
    [
        ("/admin/campaigns/campaign/", "Spring launch", "Globex cake day"),
        ("/admin/campaigns/occurrence/", "Spring launch", "Globex cake day"),
        ("/admin/campaigns/recipient/", "Spring launch (once)", "Globex cake day"),
    ],
)
def test_it_shows_staff_only_their_own_tenants(staff_alice, world, shop, path, own, other) -> None:
    occurrence_of(sending(shop["launch"]), frozen=1)
    occurrence_of(sending(shop["cake"]), frozen=1)
    page = staff_alice.get(path).content.decode()
    assert own in page
    assert other not in page


def test_it_hides_other_tenants_campaigns_from_staff_by_id(staff_alice, world, shop) -> None:
    cake = sending(shop["cake"])
    occurrence = occurrence_of(cake, frozen=1)
    recipient = Recipient.objects.get(occurrence=occurrence)
    for path in (
        f"/admin/campaigns/campaign/{cake.pk}/change/",
        f"/admin/campaigns/occurrence/{occurrence.pk}/change/",
        f"/admin/campaigns/recipient/{recipient.pk}/change/",
    ):
        assert staff_alice.get(path).status_code == 404, path
    launch = shop["launch"]
    assert staff_alice.get(f"/admin/campaigns/campaign/{launch.pk}/change/").status_code == 200
    # Nor can staff act on them.
    staff_alice.post(
        "/admin/campaigns/campaign/", {"action": "pause_campaigns", "_selected_action": [cake.pk]}
    )
    cake.refresh_from_db()
    assert cake.state == "sending"


def test_it_lets_a_viewer_look_but_not_act(staff_bob, world, shop) -> None:
    launch = sending(shop["launch"])
    page = staff_bob.get(f"/admin/campaigns/campaign/{launch.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    staff_bob.post(
        "/admin/campaigns/campaign/", {"action": "pause_campaigns", "_selected_action": [launch.pk]}
    )
    launch.refresh_from_db()
    assert launch.state == "sending"
