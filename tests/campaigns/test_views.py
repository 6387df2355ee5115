"""The campaigns UI over HTTP: the list and its empty state, the editor (errors beside the
fields and nothing saved, the htmx parts: the live recipient count and the variants' rows), the
campaign's page with its self-updating progress, schedule / pause / resume / cancel, the preview
for any recipient and the results; roles (viewers look, marketers change) and another team's
campaigns as 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audience.models import Contact
from campaigns import dispatch, services
from campaigns.models import Campaign, Occurrence
from messaging import outbox
from messaging.models import Channel, Delivery, Suppression, Template
from tests.campaigns.conftest import email_template, people, segment_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, campaign: Campaign | None = None, tenant: str = "acme") -> str:
    args: list[Any] = [tenant] + ([campaign.public_id] if campaign is not None else [])
    return reverse(name, args=args)


def form_data(segment: Any, template: Template, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Winter sale",
        "channel": "email",
        "category": "marketing",
        "segments": [str(segment.public_id)],
        "holdout_percent": "0",
        "test_percent": "100",
        "winner_metric": "opens",
        "winner_after_hours": "4",
        "schedule": "now",
        "recur_preset": "weekly",
        "recur_time": "09:00",
        "recur_weekday": "1",
        "recur_monthday": "1",
        "sto_window_hours": "24",
        "goal_window_hours": "72",
        "goal_revenue_property": "revenue",
        "variant_template": [str(template.public_id)],
        "variant_weight": ["100"],
    }
    data.update(extra)
    return data


def text(response: Any) -> str:
    """The page's words, tags gone and spaces squeezed: what a reader sees."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def send_all(campaign: Campaign) -> Occurrence:
    """What the beat and the sender do: start, release, send, finish."""
    campaign.refresh_from_db()
    occurrence = dispatch.campaign_start_due(campaign=campaign)
    assert occurrence is not None
    dispatch.occurrence_release(occurrence=occurrence)
    outbox.deliveries_send(channel=Channel.EMAIL, seconds=5)
    dispatch.occurrence_finish_if_done(occurrence=occurrence)  # the next tick's part
    return occurrence


@pytest.fixture
def audience(world: Any) -> dict[str, Any]:
    """Five reachable people in "Newsletter", one of them also in "VIPs"; one more member who
    unsubscribed and one whose address is suppressed."""
    reachable = people(world.acme, 5, prefix="reader")
    unsubscribed = people(world.acme, 1, prefix="gone", email_consent="revoked")
    bounced = people(world.acme, 1, prefix="bounced")
    Suppression.objects.create(
        tenant=world.acme, address=bounced[0].email, reason=Suppression.Reason.BOUNCED
    )
    newsletter = segment_of(world.acme, reachable + unsubscribed + bounced, name="Newsletter")
    vips = segment_of(world.acme, reachable[:1], name="VIPs")
    return {
        "newsletter": newsletter,
        "vips": vips,
        "reachable": reachable,
        "template": email_template(world.acme, name="Winter sale email"),
    }


# --- the list ----------------------------------------------------------------------------------


def test_it_explains_campaigns_when_there_are_none(login: Any, world: Any) -> None:
    response = login(world.dave).get(url("campaign_list"))
    assert response.status_code == 200
    page = text(response)
    assert "Send one message to a whole audience" in page
    assert "Create your first campaign" in page
    assert f'href="{url("campaign_new")}"' in response.content.decode()


def test_it_offers_viewers_no_new_campaign(login: Any, world: Any) -> None:
    response = login(world.bob).get(url("campaign_list"))
    assert "Create your first campaign" not in text(response)
    assert "New campaign" not in text(response)
    form = login(world.bob).get(url("campaign_new"))
    assert form.status_code == 200  # viewers may look at every page, disabled
    assert "only marketers and admins of Acme create or change campaigns" in text(form)
    assert re.search(r'<fieldset class="plain" disabled>', form.content.decode())
    assert login(world.bob).post(url("campaign_new"), {"name": "x"}).status_code == 403
    assert not Campaign.objects.exists()


def test_it_lists_campaigns_with_state_channel_and_schedule(
    login: Any, world: Any, campaign_factory: Any
) -> None:
    campaign_factory(
        name="Weekly digest",
        schedule="recurring",
        cron_minute="0",
        cron_hour="9",
        cron_day_of_week="1",
        cron_day_of_month="*",
        cron_month_of_year="*",
    )
    sent = campaign_factory(name="Launch")
    services.campaign_schedule(campaign=sent)
    send_all(sent)
    response = login(world.bob).get(url("campaign_list"))
    page = text(response)
    assert re.search(r"Weekly digest To Segment \d+ Draft Email Every Monday at 09:00", page)
    # A sent "send now" campaign went "right away" (not "as soon as it is scheduled": it was).
    assert re.search(r"Launch .*Sent Email Right away", page)
    assert "Not yet" in page  # the digest never went out
    rows = re.findall(r"<tr>.*?</tr>", response.content.decode(), re.S)
    launch = next(r for r in rows if "Launch" in r)
    digest = next(r for r in rows if "Weekly digest" in r)
    assert '<td class="num wide-only">3</td>' in launch  # its three recipients
    assert '<td class="num wide-only">—</td>' in digest
    filtered = text(login(world.bob).get(url("campaign_list") + "?state=sent"))
    assert "Launch" in filtered and "Weekly digest" not in filtered


# --- the editor --------------------------------------------------------------------------------


def test_it_preselects_the_segment_it_was_opened_from(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    segment = audience["newsletter"]
    response = login(world.dave).get(url("campaign_new") + f"?segment={segment.public_id}")
    html = response.content.decode()
    assert re.search(rf'value="{segment.public_id}"[^>]*checked', html)
    assert 'value="To Newsletter"' in html
    # The live count is there at once: 5 of 7 reachable, the others' reasons listed.
    page = text(response)
    assert "5 will get it of 7 people in the audience" in page
    assert "Unsubscribed 1" in page and "Address suppressed (bounce or complaint) 1" in page


def test_it_ignores_another_teams_segment_in_the_link(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    theirs = segment_of(world.globex, people(world.globex, 1), name="Globex fans")
    response = login(world.dave).get(url("campaign_new") + f"?segment={theirs.public_id}")
    assert response.status_code == 200
    assert str(theirs.public_id) not in response.content.decode()
    assert "Choose a segment to see how many" in text(response)


def test_it_creates_a_campaign_and_opens_its_page(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = form_data(
        audience["newsletter"],
        audience["template"],
        exclude_segments=[str(audience["vips"].public_id)],
        goal_event="Order Completed",
        throttle_per_minute="120",
    )
    response = login(world.dave).post(url("campaign_new"), data)
    campaign = Campaign.objects.get(tenant=world.acme, name="Winter sale")
    assert response.status_code == 302
    assert response["Location"] == url("campaign_detail", campaign)
    assert campaign.state == Campaign.State.DRAFT
    assert campaign.created_by == world.dave
    assert campaign.goal_event == "Order Completed" and campaign.throttle_per_minute == 120
    assert [(s.segment.name, s.exclude) for s in campaign.segments.order_by("exclude")] == [
        ("Newsletter", False),
        ("VIPs", True),
    ]
    assert [(v.key, v.template.name, v.weight) for v in campaign.variants.all()] == [
        ("A", "Winter sale email", 100)
    ]
    page = text(login(world.dave).get(response["Location"]))
    assert "Recipients now 4 of 6" in page  # five readers less the VIP; two unreachable
    assert "At most 120 a minute" in page


def test_it_shows_errors_beside_the_fields_and_saves_nothing(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = form_data(audience["newsletter"], audience["template"], name="", schedule="at")
    data.pop("segments")
    response = login(world.dave).post(url("campaign_new"), data)
    assert response.status_code == 400
    page = text(response)
    assert "Nothing was saved." in page
    assert "Choose at least one segment to send to." in page
    assert "Choose the date and time to send." in page
    assert re.search(r'name="name"[^>]*aria-invalid="true"', response.content.decode())
    assert not Campaign.objects.exists()
    # What was typed stays: the template is still chosen.
    assert re.search(
        rf'value="{audience["template"].public_id}" selected', response.content.decode()
    )


def test_it_answers_htmx_with_the_form_alone(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = form_data(audience["newsletter"], audience["template"], name="")
    response = login(world.dave).post(url("campaign_new"), data, **HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="campaign-form"')
    assert "<html" not in html
    ok = login(world.dave).post(
        url("campaign_new"), form_data(audience["newsletter"], audience["template"]), **HTMX
    )
    campaign = Campaign.objects.get(name="Winter sale")
    assert ok.status_code == 204
    assert ok["HX-Redirect"] == url("campaign_detail", campaign)


def test_it_refuses_a_name_already_taken_on_the_name(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign_factory(name="Winter sale")
    data = form_data(audience["newsletter"], audience["template"])
    response = login(world.dave).post(url("campaign_new"), data)
    assert response.status_code == 400
    assert re.search(
        r'id="id_name_error"><li>A campaign with this name already exists',
        response.content.decode(),
    )
    assert Campaign.objects.count() == 1


def test_it_adds_and_removes_variants_with_even_shares(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    client = login(world.dave)
    data = form_data(audience["newsletter"], audience["template"], variant_action="add")
    response = client.post(url("campaign_variants"), data, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<fieldset class="variants" id="variants"')
    assert re.findall(r'name="variant_weight"[^>]*value="(\d+)"', html) == ["50", "50"]
    assert "Variant B" in text(response)
    assert f'hx-post="{url("campaign_variants")}"' in html  # its own buttons work again
    data.update(
        variant_template=[str(audience["template"].public_id)] * 3,
        variant_weight=["34", "33", "33"],
        variant_action="remove:1",
    )
    response = client.post(url("campaign_variants"), data, **HTMX)
    assert re.findall(r'name="variant_weight"[^>]*value="(\d+)"', response.content.decode()) == [
        "50",
        "50",
    ]
    # Without JavaScript the same button re-renders the whole page and saves nothing.
    data.update(
        variant_action="add",
        variant_template=[str(audience["template"].public_id)],
        variant_weight=["100"],
    )
    page = client.post(url("campaign_new"), data)
    assert page.status_code == 200 and "Variant B" in text(page)
    assert not Campaign.objects.exists()


def test_it_offers_only_templates_of_the_chosen_channel(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    Template.objects.create(
        tenant=world.acme, name="Flash push", channel=Channel.PUSH, subject="Flash", html="Now"
    )
    data = form_data(audience["newsletter"], audience["template"], channel="push")
    response = login(world.dave).post(url("campaign_variants"), data, **HTMX)
    page = text(response)
    assert "Flash push" in page and "Winter sale email" not in page


def test_it_checks_that_the_variants_shares_add_up(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    other = email_template(world.acme, name="Other subject")
    data = form_data(
        audience["newsletter"],
        audience["template"],
        variant_template=[str(audience["template"].public_id), str(other.public_id)],
        variant_weight=["60", "60"],
        test_percent="20",
    )
    response = login(world.dave).post(url("campaign_new"), data)
    assert response.status_code == 400
    assert "The shares add up to 120%, not 100%." in text(response)
    data["variant_weight"] = ["60", "40"]
    assert login(world.dave).post(url("campaign_new"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert [(v.key, v.weight) for v in campaign.variants.all()] == [("A", 60), ("B", 40)]
    assert campaign.test_percent == 20


def test_it_counts_the_audience_live_after_exclusions_and_consent(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = {
        "channel": "email",
        "category": "marketing",
        "segments": [str(audience["newsletter"].public_id)],
        "exclude_segments": [str(audience["vips"].public_id)],
    }
    response = login(world.dave).post(url("campaign_audience"), data, **HTMX)
    assert response.status_code == 200
    assert "4 will get it of 6 people in the audience" in text(response)
    data["category"] = "transactional"  # consent does not apply; suppression still does
    assert "5 will get it of 6" in text(login(world.dave).post(url("campaign_audience"), data))
    data["segments"] = []
    assert "Choose a segment" in text(login(world.dave).post(url("campaign_audience"), data))


def test_it_reads_a_time_in_the_teams_time_zone(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    world.acme.timezone = "Europe/Berlin"
    world.acme.save()
    data = form_data(
        audience["newsletter"], audience["template"], schedule="at", send_at="2031-01-05T09:00"
    )
    assert login(world.dave).post(url("campaign_new"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.send_at == datetime(2031, 1, 5, 8, 0, tzinfo=UTC)
    page = text(login(world.dave).get(url("campaign_edit", campaign)))
    assert "Europe/Berlin" in page
    html = login(world.dave).get(url("campaign_edit", campaign)).content.decode()
    assert 'value="2031-01-05T09:00"' in html


def test_it_turns_the_weekly_preset_into_a_crontab_and_back(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = form_data(
        audience["newsletter"],
        audience["template"],
        schedule="recurring",
        recur_preset="weekly",
        recur_weekday="5",
        recur_time="07:30",
    )
    assert login(world.dave).post(url("campaign_new"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.cron_minute, campaign.cron_hour, campaign.cron_day_of_week) == ("30", "7", "5")
    html = login(world.dave).get(url("campaign_edit", campaign)).content.decode()
    assert re.search(r'<option value="weekly" selected>', html)
    assert re.search(r'<option value="5" selected>Friday', html)
    assert "Every Friday at 07:30" in text(login(world.dave).get(url("campaign_detail", campaign)))


def test_it_refuses_a_cron_expression_it_cannot_read(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    data = form_data(
        audience["newsletter"],
        audience["template"],
        schedule="recurring",
        recur_preset="cron",
        cron="0 25 * * *",
    )
    response = login(world.dave).post(url("campaign_new"), data)
    assert response.status_code == 400
    assert re.search(r'id="id_cron_error"><li>Not a valid hour', response.content.decode())
    data["cron"] = "0 9"
    assert "Write five fields" in text(login(world.dave).post(url("campaign_new"), data))
    data["cron"] = "0 9 * * 1-5"
    assert login(world.dave).post(url("campaign_new"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert "Cron “0 9 * * 1-5”" in text(login(world.dave).get(url("campaign_detail", campaign)))


def test_it_edits_a_draft_and_keeps_a_sent_campaign_as_it_is(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        name="Old name", segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    client = login(world.dave)
    form = client.get(url("campaign_edit", campaign))
    assert 'value="Old name"' in form.content.decode()
    data = form_data(audience["newsletter"], audience["template"], name="New name")
    assert client.post(url("campaign_edit", campaign), data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "New name"
    services.campaign_schedule(campaign=campaign)
    send_all(campaign)
    response = client.get(url("campaign_edit", campaign))
    assert response.status_code == 302
    assert "can no longer change" in text(client.get(response["Location"]))
    assert client.post(url("campaign_edit", campaign), {**data, "name": "x"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "New name"


# --- the campaign's page, scheduling and progress -----------------------------------------------


def test_it_sends_now_and_shows_the_progress_until_it_is_done(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        name="Flash", segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    client = login(world.dave)
    draft = text(client.get(url("campaign_detail", campaign)))
    assert "A draft: nothing goes out until it is scheduled." in draft
    assert "Send now" in draft
    response = client.post(url("campaign_schedule", campaign))
    assert response.status_code == 302
    assert "“Flash” is on its way." in text(client.get(response["Location"]))
    campaign.refresh_from_db()
    occurrence = dispatch.campaign_start_due(campaign=campaign)
    assert occurrence is not None

    # Frozen, nothing sent yet: the card polls itself every 2 s.
    frozen = occurrence.recipient_count
    assert frozen == 5  # the unsubscribed and the suppressed are left out
    progress = client.get(url("campaign_progress", campaign), **HTMX)
    html = progress.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert re.search(r'id="campaign-head" hx-swap-oob="true"', html)  # the buttons follow
    assert "Pause" in text(progress)
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert int(counts["waiting"]) + int(counts["going"]) == frozen  # not released, or queued
    assert counts["sent"] == "0"
    assert "0 % done" in text(progress)

    # One reader unsubscribes before their message leaves: skipped, with the reason.
    Contact.objects.filter(pk=audience["reachable"][4].pk).update(email_consent="revoked")
    dispatch.occurrence_release(occurrence=occurrence)
    outbox.deliveries_send(channel=Channel.EMAIL, seconds=5)
    dispatch.occurrence_finish_if_done(occurrence=occurrence)  # the next tick's part
    done = client.get(url("campaign_progress", campaign), **HTMX)
    html = done.content.decode()
    assert "hx-trigger" not in html.split('id="campaign-head"')[0]  # polling stops
    assert '<dd data-count="sent">4</dd>' in html
    assert '<dd data-count="skipped">1</dd>' in html
    assert "100 % done" in text(done)
    assert re.search(r"Why 1 was skipped \w.* 1", text(done))
    assert "Pause" not in text(done) and "Results" in text(done)
    assert Delivery.objects.filter(status="sent").count() == 4


def test_it_pauses_resumes_and_cancels(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    services.campaign_schedule(campaign=campaign)
    campaign.refresh_from_db()
    dispatch.campaign_start_due(campaign=campaign)
    client = login(world.dave)
    client.post(url("campaign_pause", campaign))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED
    page = client.get(url("campaign_detail", campaign))
    assert "Resume" in text(page) and "hx-trigger" not in page.content.decode()
    client.post(url("campaign_resume", campaign))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    page = client.get(url("campaign_detail", campaign))
    assert 'data-confirm="Cancel' in page.content.decode()
    response = client.post(url("campaign_cancel", campaign))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    assert "Cancelled" in text(client.get(response["Location"]))


def test_it_says_why_a_campaign_cannot_be_scheduled(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        segments=[audience["newsletter"]], variants=[(audience["template"], 100)], schedule="at"
    )
    client = login(world.dave)
    response = client.post(url("campaign_schedule", campaign))
    assert "Not scheduled: Pick the date and time to send." in text(
        client.get(response["Location"])
    )
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


def test_it_shows_a_recurring_campaigns_next_send_and_unschedules_it(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        segments=[audience["newsletter"]],
        variants=[(audience["template"], 100)],
        schedule="recurring",
        cron_minute="0",
        cron_hour="9",
        cron_day_of_week="1",
        cron_day_of_month="*",
        cron_month_of_year="*",
    )
    client = login(world.dave)
    client.post(url("campaign_schedule", campaign))
    page = text(client.get(url("campaign_detail", campaign)))
    assert re.search(r"Next send: Monday \d+ \w+ \d{4}, 09:00 \(UTC\)", page)
    client.post(url("campaign_unschedule", campaign))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


def test_it_duplicates_and_deletes(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        name="Original", segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    client = login(world.dave)
    response = client.post(url("campaign_duplicate", campaign))
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response["Location"] == url("campaign_edit", copy)
    response = client.post(url("campaign_delete", campaign))
    assert response["Location"] == url("campaign_list")
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


# --- preview and results ------------------------------------------------------------------------


def test_it_previews_a_variant_for_any_contact(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    template = email_template(world.acme, name="Hi", subject="Hello {{ contact.first_name }}!")
    campaign = campaign_factory(segments=[audience["newsletter"]], variants=[(template, 100)])
    client = login(world.bob)  # viewers may look
    sample = client.get(url("campaign_preview", campaign))
    assert sample.status_code == 200
    assert "Showing it as a sample contact" in text(sample)
    reader = audience["reachable"][0]
    found = client.get(url("campaign_preview", campaign) + f"?q={reader.email[:10]}")
    assert reader.email in text(found)
    shown = client.get(url("campaign_preview", campaign) + f"?contact={reader.public_id}")
    assert f"Hello {reader.first_name}!" in text(shown)
    assert "In the audience and reachable" in text(shown)
    stranger = Contact.objects.create(tenant=world.acme, email="s@example.com", first_name="Sam")
    shown = client.get(url("campaign_preview", campaign) + f"?contact={stranger.public_id}")
    assert "Not in this campaign's audience" in text(shown)
    theirs = people(world.globex, 1)[0]
    assert (
        client.get(url("campaign_preview", campaign) + f"?contact={theirs.public_id}").status_code
        == 404
    )


def test_it_shows_results_per_variant_against_the_holdout(
    login: Any, world: Any, campaign_factory: Any
) -> None:
    readers = people(world.acme, 40, prefix="r")
    a = email_template(world.acme, name="Subject A")
    b = email_template(world.acme, name="Subject B")
    campaign = campaign_factory(
        segments=[segment_of(world.acme, readers)],
        variants=[(a, 50), (b, 50)],
        holdout_percent=20,
        goal_event="Order Completed",
    )
    client = login(world.bob)
    empty = text(client.get(url("campaign_results", campaign)))
    assert "No results yet" in empty
    services.campaign_schedule(campaign=campaign)
    send_all(campaign)
    response = client.get(url("campaign_results", campaign))
    assert response.status_code == 200
    page = text(response)
    assert "Variant A" in page and "Variant B" in page and "Hold-out" in page
    assert "baseline" in page
    html = response.content.decode()
    assert html.count('class="bar bar-open"') == 2  # the hold-out was sent nothing to open
    assert html.count('class="bar bar-conversion"') == 3
    assert "<script" not in html.split("<main")[1]


# --- who may do what ----------------------------------------------------------------------------


def test_it_lets_viewers_look_but_not_change(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    campaign = campaign_factory(
        segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    client = login(world.bob)
    page = client.get(url("campaign_detail", campaign))
    assert page.status_code == 200
    assert ">Send now</button>" not in page.content.decode()
    assert ">Edit</a>" not in page.content.decode()
    for name in ("campaign_schedule", "campaign_duplicate", "campaign_delete", "campaign_pause"):
        assert client.post(url(name, campaign)).status_code == 403, name
    assert "disabled" in client.get(url("campaign_edit", campaign)).content.decode()
    assert client.post(url("campaign_edit", campaign), {"name": "x"}).status_code == 403
    assert client.post(url("campaign_audience"), {}).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


CAMPAIGN_URLS = [
    ("get", "campaign_detail"),
    ("get", "campaign_edit"),
    ("post", "campaign_edit"),
    ("get", "campaign_progress"),
    ("get", "campaign_preview"),
    ("get", "campaign_results"),
    ("post", "campaign_schedule"),
    ("post", "campaign_unschedule"),
    ("post", "campaign_pause"),
    ("post", "campaign_resume"),
    ("post", "campaign_cancel"),
    ("post", "campaign_duplicate"),
    ("post", "campaign_delete"),
]


@pytest.mark.parametrize(("method", "name"), CAMPAIGN_URLS)
def test_it_hides_another_teams_campaigns(
    login: Any, world: Any, campaign_factory: Any, method: str, name: str
) -> None:
    campaign = campaign_factory()
    # charlie (globex's owner) with acme's campaign id, under his own team's URL.
    response = getattr(login(world.charlie), method)(url(name, campaign, tenant="globex"))
    assert response.status_code == 404
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT
    assert Campaign.objects.count() == 1


def test_it_pins_the_lists_queries(
    login: Any, world: Any, campaign_factory: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(6):
        campaign_factory()
    client = login(world.bob)
    client.get(url("campaign_list"))  # warm the session
    with django_assert_max_num_queries(12):
        assert client.get(url("campaign_list")).status_code == 200


def test_it_sends_from_the_segment_page(login: Any, world: Any, audience: dict[str, Any]) -> None:
    segment = audience["newsletter"]
    detail = reverse("segment_detail", args=["acme", segment.public_id])
    html = login(world.dave).get(detail).content.decode()
    assert f'href="{url("campaign_new")}?segment={segment.public_id}"' in html
    assert "Send a campaign to this segment" in html
    assert "Send a campaign" not in login(world.bob).get(detail).content.decode()


def test_it_saves_local_time_best_hour_and_the_ab_test(
    login: Any, world: Any, audience: dict[str, Any]
) -> None:
    other = email_template(world.acme, name="Other subject")
    data = form_data(
        audience["newsletter"],
        audience["template"],
        schedule="local",
        local_date="2031-03-29",
        local_time="09:30",
        send_time_optimized="on",
        sto_window_hours="12",
        variant_template=[str(audience["template"].public_id), str(other.public_id)],
        variant_weight=["50", "50"],
        test_percent="20",
        winner_metric="clicks",
        winner_after_hours="6",
        holdout_percent="10",
    )
    # The services refuse the two together: the reason shows beside the checkbox.
    refused = login(world.dave).post(url("campaign_new"), data)
    assert refused.status_code == 400
    assert re.search(
        r'id="id_send_time_optimized_error"><li>Send-time optimisation picks each person',
        refused.content.decode(),
    )
    data["schedule"] = "now"
    assert login(world.dave).post(url("campaign_new"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.send_time_optimized and campaign.sto_window_hours == 12
    assert "Each at their best hour, within 12 h" in text(
        login(world.dave).get(url("campaign_detail", campaign))
    )
    data.update(schedule="local", send_time_optimized="")
    assert login(world.dave).post(url("campaign_edit", campaign), data).status_code == 302
    campaign.refresh_from_db()
    assert str(campaign.local_date) == "2031-03-29" and str(campaign.local_time) == "09:30:00"
    assert not campaign.send_time_optimized and campaign.sto_window_hours == 12
    assert (campaign.test_percent, campaign.winner_metric, campaign.winner_after_hours) == (
        20,
        "clicks",
        6,
    )
    assert campaign.holdout_percent == 10
    page = text(login(world.dave).get(url("campaign_detail", campaign)))
    assert "Sat 29 Mar 2031 at 09:30 in each recipient's time zone" in page
    assert "20 % test, then the best by clicks after 6 h goes to the rest" in page
    assert "Best hour Off" in page
    assert "10 % get nothing" in page


def test_it_polls_a_scheduled_send_only_when_it_is_near(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    def scheduled(at: datetime) -> Campaign:
        campaign = campaign_factory(
            segments=[audience["newsletter"]],
            variants=[(audience["template"], 100)],
            schedule="at",
            send_at=at,
        )
        return services.campaign_schedule(campaign=campaign)

    client = login(world.dave)
    later = scheduled(timezone.now() + timedelta(days=2))
    page = client.get(url("campaign_detail", later))
    assert "hx-trigger" not in page.content.decode()
    assert re.search(r"Goes out \w{3} \d+ \w{3} \d{4}, \d\d:\d\d \(UTC\)", text(page))
    soon = scheduled(timezone.now() + timedelta(seconds=60))
    page = client.get(url("campaign_detail", soon))
    assert 'hx-trigger="every 2s"' in page.content.decode()


# --- the pictures' geometry (campaigns/charts.py) -------------------------------------------------


def test_it_draws_the_progress_bar_in_proportion_without_the_holdout() -> None:
    from campaigns import charts
    from campaigns.selectors import Progress

    progress = Progress(
        total=110,
        holdout=10,
        waiting=40,
        queued=5,
        sending=5,
        sent=30,
        skipped={"unsubscribed": 15, "no email address": 5},
        failed=0,
        percent_done=50.0,
    )
    parts = {p.key: p for p in charts.progress_bar(progress)}
    assert [(p.count, p.width) for p in parts.values()] == [
        (30, 30.0),
        (20, 20.0),
        (0, 0.0),
        (10, 10.0),
        (40, 40.0),
    ]
    assert parts["waiting"].x == 60.0  # after sent, skipped, failed and those on their way
    empty = Progress(0, 0, 0, 0, 0, 0, {}, 0, 100.0)
    assert all(p.width == 0 for p in charts.progress_bar(empty))


def test_it_scales_the_rate_bars_to_a_round_top_and_leaves_out_the_holdouts_opens() -> None:
    from campaigns import charts
    from campaigns.results import ResultRow

    a = ResultRow(key="A", label="Variant A", recipients=100, sent=100, opens=40, clicks=10)
    holdout = ResultRow(key="holdout", label="Hold-out", recipients=20, conversions=1)
    chart = charts.rates_chart([a, holdout])
    assert chart.ticks[-1].text == "50 %"  # 40 % opens: the next round top is 50 %
    opened = chart.groups[0].bars[0]
    assert opened.text == "40%" and opened.height == pytest.approx(0.8 * (260 - 16 - 34))
    assert [b.metric for b in chart.groups[1].bars] == ["conversion"]


def test_it_draws_no_line_chart_before_there_are_two_points() -> None:
    from campaigns import charts
    from campaigns.results import Series, SeriesPoint

    start = datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert charts.series_chart(Series("hour", [SeriesPoint(start)]), with_conversions=True) is None
    points = [SeriesPoint(start + timedelta(hours=h), opens=h) for h in range(13)]
    chart = charts.series_chart(Series("hour", points), with_conversions=False)
    assert chart is not None
    assert [line.key for line in chart.lines] == ["opens", "clicks"]
    assert chart.lines[0].total == sum(range(13))
    assert chart.x_labels[0] == (52.0, "09:00", "start")
    assert chart.x_labels[-1][1:] == ("21:00", "end")


def test_it_refuses_another_teams_segments_templates_and_sends(
    login: Any, world: Any, audience: dict[str, Any], campaign_factory: Any
) -> None:
    theirs = segment_of(world.globex, people(world.globex, 2), name="Globex fans")
    their_template = email_template(world.globex, name="Globex news")
    client = login(world.dave)
    data = form_data(theirs, their_template)
    response = client.post(url("campaign_new"), data)
    assert response.status_code == 400
    page = text(response)
    assert "Select a valid choice" in page  # their segment is no choice here
    assert "Choose a template." in page  # nor their template
    assert "Globex" not in page
    assert not Campaign.objects.exists()
    # Another campaign's send, asked for under this one: 404.
    mine = campaign_factory(
        segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    other = campaign_factory(
        segments=[audience["newsletter"]], variants=[(audience["template"], 100)]
    )
    services.campaign_schedule(campaign=other)
    other.refresh_from_db()
    occurrence = dispatch.campaign_start_due(campaign=other)
    assert occurrence is not None
    for name in ("campaign_detail", "campaign_progress", "campaign_results"):
        response = client.get(url(name, mine) + f"?send={occurrence.public_id}")
        assert response.status_code == 404, name
        assert client.get(url(name, other) + f"?send={occurrence.public_id}").status_code == 200
