"""Campaigns UI: the list, the editor (with the live recipient count and the variants' rows as
htmx parts), the campaign's page (its schedule, and while it sends a progress bar that polls
itself), the preview for any recipient, and the results with their charts.

Every write goes through campaigns.services and every read through campaigns.selectors (the
gatekeeper `campaign_get` 404s another team's campaign). Times are shown and typed in the team's
time zone: `team_time` activates it for the request. Without JavaScript the forms still work:
the variants' Add / Remove buttons and the editor post to the page, which answers whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audience.selectors import event_names_recent
from campaigns import charts, dispatch, schedules, selectors, services
from campaigns.forms import (
    GOAL_SUGGESTIONS,
    MAX_VARIANTS,
    RECUR_CRON,
    CampaignForm,
    VariantRow,
    schedule_summary,
    variant_rows_initial,
    variant_rows_posted,
    variants_clean,
)
from campaigns.models import Campaign, Occurrence
from core.forms import add_service_errors
from messaging import selectors as messaging_selectors
from messaging.models import Channel, Template
from segments.models import Segment
from segments.selectors import contact_segments, segment_list
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

EDITOR = "campaigns/campaign_form.html"
DETAIL = "campaigns/campaign_detail.html"
POLL_SECONDS = 2
# A campaign scheduled for a time this close polls too, so its page shows the send start.
POLL_AHEAD = timedelta(minutes=2)


def team_time(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Run the view in the team's time zone: forms read and show times there, and so do the
    templates."""

    @functools.wraps(view)
    def wrapped(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with timezone.override(schedules.zone(request.tenant.timezone)):
            return view(request, *args, **kwargs)

    return wrapped


def _error_message(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _htmx_redirect(request: TenantRequest, url: str) -> HttpResponse:
    if request.htmx:
        answer = HttpResponse(status=204)
        answer["HX-Redirect"] = url
        return answer
    return redirect(url)


def _urls(campaign: Campaign, slug: str) -> dict[str, str]:
    args = [slug, campaign.public_id]
    names = [
        "campaign_detail",
        "campaign_edit",
        "campaign_schedule",
        "campaign_unschedule",
        "campaign_pause",
        "campaign_resume",
        "campaign_cancel",
        "campaign_duplicate",
        "campaign_delete",
        "campaign_progress",
        "campaign_results",
        "campaign_preview",
    ]
    return {name.removeprefix("campaign_"): reverse(name, args=args) for name in names}


# --- the list ----------------------------------------------------------------------------------


@require_GET
@team_time
def campaign_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in Campaign.State.values:
        state = ""
    campaigns = list(
        selectors.campaign_list(tenant=request.tenant, state=state).prefetch_related(
            "segments__segment"
        )
    )
    for campaign in campaigns:
        campaign.when = schedule_summary(campaign)  # type: ignore[attr-defined]
        chosen = list(campaign.segments.all())
        campaign.audience = [s.segment.name for s in chosen if not s.exclude]  # type: ignore[attr-defined]
    ctx = {
        "campaigns": campaigns,
        "state": state,
        "states": Campaign.State.choices,
        "any_campaigns": bool(campaigns) or selectors.campaign_list(tenant=request.tenant).exists(),
    }
    return render(request, "campaigns/campaign_list.html", ctx)


# --- the editor --------------------------------------------------------------------------------


def _segment_choices(request: TenantRequest) -> list[tuple[str, str]]:
    return [
        (str(s.public_id), f"{s.name} ({s.member_count:,})")
        for s in segment_list(tenant=request.tenant)
    ]


def _segments_chosen(request: TenantRequest, public_ids: list[str]) -> list[Segment]:
    """The team's segments among `public_ids` (another team's or unknown ids are left out)."""
    wanted = set()
    for value in public_ids:
        try:
            wanted.add(UUID(str(value)))
        except ValueError:
            continue
    if not wanted:
        return []
    return list(segment_list(tenant=request.tenant).filter(public_id__in=wanted))


def _channel(value: object) -> str:
    return str(value) if value in Channel.values else Channel.EMAIL


def _templates(request: TenantRequest) -> dict[str, Template]:
    return {str(t.public_id): t for t in messaging_selectors.template_list(tenant=request.tenant)}


def _variants_context(
    request: TenantRequest, rows: list[VariantRow], channel: str, error: str = ""
) -> dict[str, Any]:
    templates = _templates(request)
    choices = [(pid, t.name) for pid, t in templates.items() if t.channel == channel]
    for row in rows:  # a template of the other channel is no choice any more
        if row.template and row.template not in dict(choices):
            row.template = ""
    return {
        "variant_rows": rows,
        "variant_error": error,
        "variant_templates": choices,
        "variant_channel_label": Channel(channel).label.lower(),
        "can_add_variant": len(rows) < MAX_VARIANTS,
        "max_variants": MAX_VARIANTS,
        "variants_url": reverse("campaign_variants", args=[request.tenant.slug]),
        "template_new_url": reverse("template_new", args=[request.tenant.slug])
        + f"?channel={channel}",
    }


def _audience_context(
    request: TenantRequest, *, channel: str, category: str, include: list[str], exclude: list[str]
) -> dict[str, Any]:
    segments = _segments_chosen(request, include)
    if not segments:
        return {"audience": None}
    estimate = selectors.audience_estimate(
        tenant=request.tenant,
        channel=channel,
        category=category,
        segments=segments,
        exclude_segments=_segments_chosen(request, exclude),
    )
    return {"audience": estimate, "audience_channel": Channel(channel).label.lower()}


def _posted_initial(data: QueryDict) -> dict[str, Any]:
    """What was typed, as the initial values of an unbound form: a re-render that shows the
    posted values without complaining (the variants' Add / Remove without JavaScript)."""
    multi = {"segments", "exclude_segments"}
    return {
        name: data.getlist(name) if name in multi else data.get(name)
        for name in CampaignForm.base_fields
        if name in data or name in multi
    }


def _editor_context(
    request: TenantRequest,
    *,
    campaign: Campaign | None,
    form: CampaignForm,
    rows: list[VariantRow],
    variant_error: str = "",
) -> dict[str, Any]:
    channel = _channel(form["channel"].value())
    category = str(form["category"].value() or "marketing")
    include = [str(v) for v in (form["segments"].value() or [])]
    exclude = [str(v) for v in (form["exclude_segments"].value() or [])]
    slug = request.tenant.slug
    names = dict.fromkeys(event_names_recent(tenant=request.tenant))
    names.update(dict.fromkeys(GOAL_SUGGESTIONS))
    if campaign is not None:
        save_url = reverse("campaign_edit", args=[slug, campaign.public_id])
        cancel_url = reverse("campaign_detail", args=[slug, campaign.public_id])
    else:
        save_url = reverse("campaign_new", args=[slug])
        cancel_url = reverse("campaign_list", args=[slug])
    return {
        "campaign": campaign,
        "form": form,
        "save_url": save_url,
        "cancel_url": cancel_url,
        "audience_url": reverse("campaign_audience", args=[slug]),
        "event_names": list(names),
        "team_timezone": request.tenant.timezone,
        "has_segments": bool(form.fields["segments"].choices),  # type: ignore[attr-defined]
        "readonly": not request.membership.can_edit,
        **_variants_context(request, rows, channel, variant_error),
        **_audience_context(
            request, channel=channel, category=category, include=include, exclude=exclude
        ),
    }


def _editor_answer(request: TenantRequest, ctx: dict[str, Any], status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{EDITOR}#editor", ctx, status=status)
    return render(request, EDITOR, ctx, status=status)


def _editor_page(request: TenantRequest, campaign: Campaign | None) -> HttpResponse:
    choices = _segment_choices(request)
    if request.method == "GET":
        initial: dict[str, Any]
        if campaign is not None:
            initial = CampaignForm.initial_for(campaign)
        else:
            initial = {}
            preselect = _segments_chosen(request, request.GET.getlist("segment"))
            if preselect:
                initial["segments"] = [str(s.public_id) for s in preselect]
                initial["name"] = f"To {preselect[0].name}"
        form = CampaignForm(initial=initial, segments=choices)
        rows = variant_rows_initial(campaign)
        return _editor_answer(
            request, _editor_context(request, campaign=campaign, form=form, rows=rows)
        )

    action = request.POST.get("variant_action", "")
    rows = variant_rows_posted(request.POST, action)
    if action:  # Add / Remove a variant without JavaScript: the page again, nothing saved
        form = CampaignForm(initial=_posted_initial(request.POST), segments=choices)
        return _editor_answer(
            request, _editor_context(request, campaign=campaign, form=form, rows=rows)
        )

    form = CampaignForm(request.POST, segments=choices)
    valid = form.is_valid()
    channel = _channel(request.POST.get("channel"))
    variants, variant_error = variants_clean(rows, _templates(request), channel=channel)
    if valid and not variant_error:
        fields = {
            **form.campaign_fields(),
            "segments": _segments_chosen(request, form.cleaned_data["segments"]),
            "exclude_segments": _segments_chosen(request, form.cleaned_data["exclude_segments"]),
            "variants": variants,
        }
        try:
            if campaign is None:
                saved = services.campaign_create(tenant=request.tenant, user=request.user, **fields)
            else:
                saved = services.campaign_update(campaign=campaign, **fields)
        except ValidationError as exc:
            variant_error = _service_errors(form, exc) or variant_error
        else:
            messages.success(
                request,
                f"Saved “{saved.name}”."
                + (" Schedule it when it is ready." if saved.state == Campaign.State.DRAFT else ""),
            )
            return _htmx_redirect(
                request, reverse("campaign_detail", args=[request.tenant.slug, saved.public_id])
            )
    ctx = _editor_context(
        request, campaign=campaign, form=form, rows=rows, variant_error=variant_error
    )
    ctx["has_errors"] = True
    return _editor_answer(request, ctx, status=400)


def _service_errors(form: CampaignForm, exc: ValidationError) -> str:
    """The services' errors on the form, beside the controls that set them; returns the
    variants' (shown above their rows)."""
    if not hasattr(exc, "error_dict"):
        add_service_errors(form, exc)
        return ""
    errors = exc.message_dict
    variants = " ".join(errors.pop("variants", []))
    # The crontab's five fields come from the preset's time or the cron expression.
    advanced = form.cleaned_data.get("recur_preset") == RECUR_CRON
    cron_target = "cron" if advanced else "recur_time"
    shown: dict[str, list[str]] = {}
    for name, messages_ in errors.items():
        target = cron_target if name.startswith("cron_") else name
        shown.setdefault(target, []).extend(messages_)
    if shown:
        add_service_errors(form, ValidationError(shown))
    return variants


@require_http_methods(["GET", "POST"])
@team_time
def campaign_new(request: TenantRequest, tenant_slug: str) -> HttpResponseBase:
    """A new campaign; `?segment=<public id>` chooses that segment (the segment page's "Send a
    campaign to this segment"). A viewer sees the form disabled; saving needs a marketer."""
    if request.method == "POST":
        return _editor_save(request, None)
    return _editor_page(request, None)


@require_http_methods(["GET", "POST"])
@team_time
def campaign_edit(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponseBase:
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    if not campaign.editable:
        messages.error(
            request,
            f"“{campaign.name}” is {campaign.get_state_display().lower()}: it can no longer "
            "change. Duplicate it to send something like it.",
        )
        return redirect("campaign_detail", tenant_slug=tenant_slug, campaign_id=campaign_id)
    if request.method == "POST":
        return _editor_save(request, campaign)
    return _editor_page(request, campaign)


@role_required(Role.MARKETER)
def _editor_save(request: TenantRequest, campaign: Campaign | None) -> HttpResponse:
    return _editor_page(request, campaign)


@require_POST
@role_required(Role.MARKETER)
def campaign_audience(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The editor's live recipient count for the posted channel, category and segments."""
    ctx = _audience_context(
        request,
        channel=_channel(request.POST.get("channel")),
        category=request.POST.get("category", "marketing"),
        include=request.POST.getlist("segments"),
        exclude=request.POST.getlist("exclude_segments"),
    )
    return render(request, f"{EDITOR}#audience", ctx)


@require_POST
@role_required(Role.MARKETER)
def campaign_variants(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The editor's variant rows after Add / Remove (`variant_action`) or a change of channel."""
    action = request.POST.get("variant_action", "")
    rows = variant_rows_posted(request.POST, action)
    ctx = _variants_context(request, rows, _channel(request.POST.get("channel")))
    if action == "add":  # the keyboard goes on in the new row (htmx honours autofocus)
        ctx["focus_row"] = len(rows) - 1
    return render(request, f"{EDITOR}#variants", ctx)


# --- a campaign's page and its progress ----------------------------------------------------------


def next_run(campaign: Campaign) -> datetime | None:
    """A recurring campaign's next slot (dispatch's own reckoning, so the page and the beat
    agree), or None when it has none left."""
    try:
        return dispatch.next_slot(campaign, after=timezone.now())
    except (ValueError, TypeError):  # a crontab the services would refuse to schedule
        return None


def _polling(campaign: Campaign, progress: Any) -> bool:
    """Whether the page refreshes its progress: while sending or while released messages are
    still on their way (a campaign is sent once all are released, not yet all delivered), and
    just before a scheduled one-off send starts."""
    if campaign.state == Campaign.State.SENDING:
        return True
    if progress is not None and progress.queued + progress.sending > 0:
        return True
    if campaign.state != Campaign.State.SCHEDULED:
        return False
    if campaign.schedule == Campaign.Schedule.NOW:
        return True
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at is not None:
        return campaign.send_at <= timezone.now() + POLL_AHEAD
    return False


def _occurrence(request: TenantRequest, campaign: Campaign) -> Occurrence | None:
    wanted = request.GET.get("send", "")
    if wanted:
        return selectors.occurrence_get(campaign=campaign, public_id=wanted)
    return selectors.occurrence_latest(campaign=campaign)


def _detail_context(request: TenantRequest, campaign: Campaign) -> dict[str, Any]:
    occurrence = _occurrence(request, campaign)
    progress = selectors.occurrence_progress(occurrence=occurrence) if occurrence else None
    return {
        "campaign": campaign,
        "urls": _urls(campaign, request.tenant.slug),
        "can_edit": request.membership.can_edit,
        "occurrence": occurrence,
        "progress": progress,
        "progress_bar": charts.progress_bar(progress) if progress else None,
        "skipped_reasons": list(progress.skipped.items()) if progress else [],
        "poll": POLL_SECONDS if _polling(campaign, progress) else 0,
        "when": schedule_summary(campaign),
        "next_run": next_run(campaign)
        if campaign.schedule == Campaign.Schedule.RECURRING
        and campaign.state in (Campaign.State.SCHEDULED, Campaign.State.SENDING)
        else None,
        "team_timezone": request.tenant.timezone,
    }


@require_GET
@team_time
def campaign_detail(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    """The campaign: what, to whom, when; its latest send's progress (`?send=<id>`: another
    send of a recurring campaign), with pause / resume / cancel."""
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    ctx = _detail_context(request, campaign)
    chosen = list(campaign.segments.select_related("segment"))
    ctx.update(
        segments=[s.segment for s in chosen if not s.exclude],
        exclude_segments=[s.segment for s in chosen if s.exclude],
        variants=list(campaign.variants.select_related("template")),
        audience=selectors.campaign_audience_estimate(campaign=campaign)
        if campaign.editable
        else None,
        occurrences=list(campaign.occurrences.order_by("-started_at")[:12])
        if campaign.schedule == Campaign.Schedule.RECURRING
        else [],
    )
    return render(request, DETAIL, ctx)


@require_GET
@team_time
def campaign_progress(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    """The progress card (polled every 2 s while sending; the answer without the poll stops
    it) and the page's head out of band, so the buttons follow the state."""
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    ctx = _detail_context(request, campaign)
    return render(request, f"{DETAIL}#progress_response", {**ctx, "oob": True})


def _lifecycle(request: TenantRequest, campaign_id: UUID, verb: str, done: str) -> HttpResponse:
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    action = getattr(services, f"campaign_{verb}")
    try:
        changed = action(campaign=campaign)
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
    else:
        messages.success(request, done.format(name=campaign.name, campaign=changed or campaign))
    return redirect("campaign_detail", tenant_slug=request.tenant.slug, campaign_id=campaign_id)


@require_POST
@role_required(Role.MARKETER)
@team_time
def campaign_schedule(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    try:
        campaign = services.campaign_schedule(campaign=campaign)
    except ValidationError as exc:
        messages.error(request, f"Not scheduled: {_error_message(exc)}")
    else:
        if campaign.schedule == Campaign.Schedule.NOW:
            messages.success(request, f"“{campaign.name}” is on its way.")
        else:
            messages.success(request, f"Scheduled “{campaign.name}”: {schedule_summary(campaign)}.")
    return redirect("campaign_detail", tenant_slug=request.tenant.slug, campaign_id=campaign_id)


@require_POST
@role_required(Role.MARKETER)
def campaign_unschedule(
    request: TenantRequest, tenant_slug: str, campaign_id: UUID
) -> HttpResponse:
    return _lifecycle(
        request, campaign_id, "unschedule", "“{name}” is a draft again: nothing will go out."
    )


@require_POST
@role_required(Role.MARKETER)
def campaign_pause(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    return _lifecycle(
        request,
        campaign_id,
        "pause",
        "Paused “{name}”: nothing more goes out until you resume (a message a sender "
        "already holds may still leave).",
    )


@require_POST
@role_required(Role.MARKETER)
def campaign_resume(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    return _lifecycle(
        request,
        campaign_id,
        "resume",
        "Resumed “{name}”: it carries on with those not sent yet, no one twice.",
    )


@require_POST
@role_required(Role.MARKETER)
def campaign_cancel(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    return _lifecycle(
        request, campaign_id, "cancel", "Cancelled “{name}”: no more of its messages go out."
    )


@require_POST
@role_required(Role.MARKETER)
def campaign_duplicate(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    try:
        copy = services.campaign_duplicate(campaign=campaign, user=request.user)
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
        return redirect("campaign_detail", tenant_slug=tenant_slug, campaign_id=campaign_id)
    messages.success(request, f"Made “{copy.name}”, a draft: change what you need, then schedule.")
    return redirect("campaign_edit", tenant_slug=tenant_slug, campaign_id=copy.public_id)


@require_POST
@role_required(Role.MARKETER)
def campaign_delete(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    try:
        services.campaign_delete(campaign=campaign)
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
        return redirect("campaign_detail", tenant_slug=tenant_slug, campaign_id=campaign_id)
    messages.success(request, f"Deleted “{campaign.name}”.")
    return redirect("campaign_list", tenant_slug=tenant_slug)


# --- preview --------------------------------------------------------------------------------------


@require_GET
@team_time
def campaign_preview(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    """A variant rendered for any contact (`?contact=<id>`, found with `?q=`), or the sample
    contact, exactly as a send would render it; and whether that contact would get it."""
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    variants = list(campaign.variants.select_related("template"))
    key = request.GET.get("variant", "")
    variant = next((v for v in variants if v.key == key), variants[0] if variants else None)
    query = request.GET.get("q", "").strip()[:200]
    found = messaging_selectors.preview_contacts(tenant=request.tenant, search=query)
    contact = None
    if request.GET.get("contact"):
        contact = messaging_selectors.preview_contact_get(
            tenant=request.tenant, public_id=request.GET["contact"]
        )
    preview = (
        messaging_selectors.template_preview(
            tenant=request.tenant, template=variant.template, contact=contact
        )
        if variant
        else None
    )
    verdict = _recipient_verdict(request, campaign, contact) if contact else None
    ctx = {
        "campaign": campaign,
        "urls": _urls(campaign, request.tenant.slug),
        "variants": variants,
        "variant": variant,
        "query": query,
        "found": found,
        "no_match": bool(query) and not found,
        "contact": contact,
        "contact_label": _contact_label(contact) if contact else "a sample contact",
        "preview": preview,
        "preview_errors": [p for ps in preview.errors.values() for p in ps] if preview else [],
        "verdict": verdict,
        "readonly": True,
    }
    if request.htmx and request.htmx.target == "preview-pane":
        return render(request, "campaigns/campaign_preview.html#pane", ctx)
    return render(request, "campaigns/campaign_preview.html", ctx)


def _contact_label(contact: Any) -> str:
    name = f"{contact.first_name} {contact.last_name}".strip()
    if name and contact.email:
        return f"{name} <{contact.email}>"
    return name or contact.email or contact.user_id or "an anonymous visitor"


def _recipient_verdict(request: TenantRequest, campaign: Campaign, contact: Any) -> str:
    """Would this contact get the campaign now: in the audience, and reachable?"""
    chosen = {
        s.segment_id: s.exclude
        for s in campaign.segments.all()  # the campaign's, already the tenant's
    }
    theirs = set(
        contact_segments(tenant=request.tenant, contact=contact).values_list(
            "segment_id", flat=True
        )
    )
    included = [sid for sid, ex in chosen.items() if not ex and sid in theirs]
    excluded = [sid for sid, ex in chosen.items() if ex and sid in theirs]
    if not included:
        return "Not in this campaign's audience: they are in none of its segments."
    if excluded:
        return "Not in this campaign's audience: an excluded segment keeps them out."
    reason = messaging_selectors.contact_unreachable_reason(
        tenant=request.tenant,
        contact=contact,
        channel=campaign.channel,
        category=campaign.category,
    )
    if reason:
        return f"In the audience, but would be skipped: {reason}."
    return ""


# --- results --------------------------------------------------------------------------------------


@require_GET
@team_time
def campaign_results(request: TenantRequest, tenant_slug: str, campaign_id: UUID) -> HttpResponse:
    """What a send earned, per variant and against the hold-out, with charts."""
    campaign = selectors.campaign_get(tenant=request.tenant, public_id=campaign_id)
    occurrence = _occurrence(request, campaign)
    results = (
        selectors.campaign_results(campaign=campaign, occurrence=occurrence) if occurrence else None
    )
    ctx = {
        "campaign": campaign,
        "urls": _urls(campaign, request.tenant.slug),
        "occurrence": occurrence,
        # The picker needs only when each went: not their kept results.
        "occurrences": list(campaign.occurrences.defer("results").order_by("-started_at")[:12]),
        "results": results,
        "charts": charts.results_charts(results) if results else None,
    }
    return render(request, "campaigns/campaign_results.html", ctx)
