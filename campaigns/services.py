"""Writes for campaigns: what the editor, the API, the admin and the tasks change.

Every function is keyword-only and transactional, and trusts that `campaign` was loaded through
the gatekeeper (`campaigns.selectors.campaign_get`). Bad input raises django's ValidationError
by field name, in words a marketer understands; a change the campaign's state forbids
(pausing one that isn't sending, editing one that is) raises ValidationError with
code "state" (the API's 409).

    campaign_create(*, tenant, user=None, **fields) -> Campaign          a draft
    campaign_update(*, campaign, **fields) -> Campaign                   draft or scheduled
    campaign_schedule(*, campaign) -> Campaign                           -> scheduled
    campaign_unschedule(*, campaign) -> Campaign                         scheduled -> draft
    campaign_pause / campaign_resume / campaign_cancel(*, campaign) -> Campaign
    campaign_delete(*, campaign) -> None
    campaign_duplicate(*, campaign, user=None) -> Campaign               "Name (copy)", a draft
    campaign_demo_seed(*, tenant, actor=None) -> int                     the demo's campaigns

`fields`: the editable Campaign fields (EDITABLE_FIELDS) plus `segments` and
`exclude_segments` (lists of the team's segments) and `variants` ([(template, weight)], keys
A, B, C… in order). Sending itself is campaigns/dispatch.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import dispatch, schedules
from campaigns.models import Campaign, CampaignSegment, Occurrence, Recipient, Variant
from messaging.models import Template
from segments.models import Segment
from tenants.models import Tenant

EDITABLE_FIELDS = (
    "name",
    "channel",
    "category",
    "schedule",
    "send_at",
    "local_date",
    "local_time",
    "cron_minute",
    "cron_hour",
    "cron_day_of_week",
    "cron_day_of_month",
    "cron_month_of_year",
    "recurring_until",
    "throttle_per_minute",
    "send_time_optimized",
    "sto_window_hours",
    "test_percent",
    "winner_metric",
    "winner_after_hours",
    "holdout_percent",
    "goal_event",
    "goal_window_hours",
    "goal_revenue_property",
)
RELATIONS = ("segments", "exclude_segments", "variants")
MAX_VARIANTS = 5
VARIANT_KEYS = "ABCDE"
RECURRING_TASK = "campaigns.tasks.recurring_fire"
CANCELLED_REASON = "campaign cancelled"


def _state_error(message: str) -> ValidationError:
    return ValidationError(message, code="state")


def _locked(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .get(pk=campaign.pk)
    )


# --- editing ---------------------------------------------------------------------------------


def campaign_create(*, tenant: Tenant, user: Any = None, **fields: Any) -> Campaign:
    """A new draft campaign of the team."""
    with transaction.atomic():
        campaign = Campaign(tenant=tenant, created_by=user if user and user.pk else None)
        _apply(campaign, fields, creating=True)
    return campaign


def campaign_update(*, campaign: Campaign, **fields: Any) -> Campaign:
    """Change a draft or scheduled campaign. A scheduled one must stay ready to send (else
    nothing changes and the errors say why); its recurring schedule follows the change."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if not campaign.editable:
            raise _state_error(
                f"This campaign is {campaign.get_state_display().lower()}: only a draft or a "
                "scheduled campaign can be changed."
            )
        _apply(campaign, fields, creating=False)
        if campaign.state == Campaign.State.SCHEDULED:
            _schedule(campaign)
    return campaign


def _apply(campaign: Campaign, fields: dict[str, Any], *, creating: bool) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS) - set(RELATIONS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    segments = fields.pop("segments", None)
    exclude_segments = fields.pop("exclude_segments", None)
    variants = fields.pop("variants", None)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if isinstance(campaign.name, str):
        campaign.name = campaign.name.strip()
    campaign.updated_at = timezone.now()

    errors: dict[str, list[str]] = {}
    try:
        campaign.full_clean(
            exclude=["tenant", "created_by", "periodic_task"], validate_constraints=False
        )
    except ValidationError as exc:
        errors = {k: list(v) for k, v in exc.message_dict.items()}
    others = Campaign.objects.filter(tenant_id=campaign.tenant_id, name__iexact=campaign.name)
    if campaign.pk:
        others = others.exclude(pk=campaign.pk)
    if campaign.name and others.exists():
        errors.setdefault("name", []).append("A campaign with this name already exists.")
    for name, message in _field_errors(campaign).items():
        errors.setdefault(name, []).append(message)

    tenant_id = campaign.tenant_id
    if segments is not None:
        problem = _segments_problem(segments, tenant_id)
        if problem:
            errors.setdefault("segments", []).append(problem)
    if exclude_segments is not None:
        problem = _segments_problem(exclude_segments, tenant_id)
        if problem:
            errors.setdefault("exclude_segments", []).append(problem)
    if segments is not None or exclude_segments is not None:
        included = (
            {s.pk for s in segments} if segments is not None else _segment_ids(campaign, False)
        )
        excluded = (
            {s.pk for s in exclude_segments}
            if exclude_segments is not None
            else _segment_ids(campaign, True)
        )
        if included & excluded:
            errors.setdefault("exclude_segments", []).append(
                "A segment can't be both sent to and excluded."
            )
    if variants is not None:
        problem = _variants_problem(variants, campaign)
        if problem:
            errors.setdefault("variants", []).append(problem)
    elif campaign.pk:
        wrong = Variant.objects.filter(campaign=campaign).exclude(
            template__channel=campaign.channel
        )
        if wrong.exists():
            errors.setdefault("channel", []).append(
                "The campaign's messages are of another channel: choose messages for this one."
            )
    if errors:
        raise ValidationError(errors)

    campaign.save()
    if segments is not None:
        _segments_set(campaign, segments, exclude=False)
    if exclude_segments is not None:
        _segments_set(campaign, exclude_segments, exclude=True)
    if variants is not None:
        _variants_set(campaign, variants)


def _field_errors(campaign: Campaign) -> dict[str, str]:
    """What can never be right, checked on every save (drafts may be incomplete)."""
    errors = (
        schedules.cron_errors(vars(campaign))
        if campaign.schedule == Campaign.Schedule.RECURRING
        else {}
    )
    errors.update(_date_errors(campaign))
    if campaign.send_time_optimized and campaign.schedule == Campaign.Schedule.LOCAL:
        errors["send_time_optimized"] = (
            "Send-time optimisation picks each person's hour itself: it can't be combined with "
            "sending at a local time."
        )
    return errors


# Dates a campaign may use: far enough from year 1 and 9999 that time-zone and day arithmetic
# (schedules) can't overflow.
YEARS = (2000, 2200)


def _date_errors(campaign: Campaign) -> dict[str, str]:
    """{field: message} for dates outside YEARS (checked before any arithmetic on them)."""
    errors = {}
    for name in ("send_at", "local_date", "recurring_until"):
        value = getattr(campaign, name)
        if value is not None and not YEARS[0] <= value.year <= YEARS[1]:
            errors[name] = f"Pick a date between the years {YEARS[0]} and {YEARS[1]}."
    return errors


def _segments_problem(segments: Sequence[Segment], tenant_id: int) -> str:
    if any(not isinstance(s, Segment) or s.tenant_id != tenant_id for s in segments):
        return "Choose segments of your own team."
    return ""


def _segment_ids(campaign: Campaign, exclude: bool) -> set[int]:
    if not campaign.pk:
        return set()
    return set(
        CampaignSegment.objects.filter(campaign=campaign, exclude=exclude).values_list(
            "segment_id", flat=True
        )
    )


def _segments_set(campaign: Campaign, segments: Sequence[Segment], *, exclude: bool) -> None:
    CampaignSegment.objects.filter(campaign=campaign, exclude=exclude).delete()
    seen: set[int] = set()
    rows = []
    for segment in segments:
        if segment.pk not in seen:
            seen.add(segment.pk)
            rows.append(
                CampaignSegment(
                    tenant_id=campaign.tenant_id,
                    campaign=campaign,
                    segment=segment,
                    exclude=exclude,
                )
            )
    CampaignSegment.objects.bulk_create(rows)


def _variants_problem(variants: Sequence[tuple[Template, int]], campaign: Campaign) -> str:
    if len(variants) > MAX_VARIANTS:
        return f"A campaign can test at most {MAX_VARIANTS} variants."
    for template, weight in variants:
        if not isinstance(template, Template) or template.tenant_id != campaign.tenant_id:
            return "Choose messages of your own team."
        if template.channel != campaign.channel:
            kind = "an email" if campaign.channel == "email" else "a web push"
            return f"“{template.name}” is not {kind} message: choose one for this channel."
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            return "Give each variant a share between 1 and 100."
    if campaign.pk:
        keep = set(VARIANT_KEYS[: len(variants)])
        dropped = Variant.objects.filter(campaign=campaign).exclude(key__in=keep)
        sent = Recipient.objects.filter(
            tenant_id=campaign.tenant_id, occurrence__campaign=campaign, variant__in=dropped
        )
        if sent.exists():
            return "A variant that has been sent can't be removed (its results would go with it)."
    return ""


def _variants_set(campaign: Campaign, variants: Sequence[tuple[Template, int]]) -> None:
    """Variants by key in place: a recurring campaign's past recipients keep theirs."""
    keys = VARIANT_KEYS[: len(variants)]
    # Only unsent variants go (_variants_problem): no recipient refers to them, so no cascade
    # (which would look recipients up by variant, unindexed).
    dropped = Variant.objects.filter(campaign=campaign).exclude(key__in=set(keys))
    Occurrence.objects.filter(campaign=campaign, winner__in=dropped).update(winner=None)
    dropped._raw_delete(dropped.db)
    existing = {v.key: v for v in Variant.objects.filter(campaign=campaign)}
    for key, (template, weight) in zip(keys, variants, strict=True):
        variant = existing.get(key) or Variant(
            tenant_id=campaign.tenant_id, campaign=campaign, key=key
        )
        variant.template, variant.weight = template, weight
        variant.save()


# --- scheduling ------------------------------------------------------------------------------


def ready_errors(campaign: Campaign, *, at: datetime | None = None) -> dict[str, str]:
    """Why the campaign can't be scheduled yet ({} when it can)."""
    at = at or timezone.now()
    errors = _date_errors(campaign)
    if errors:
        return errors
    if not CampaignSegment.objects.filter(campaign=campaign, exclude=False).exists():
        errors["segments"] = "Choose at least one segment to send to."
    variants = list(Variant.objects.filter(campaign=campaign).select_related("template"))
    if not variants:
        errors["variants"] = "Choose the message to send."
    elif any(v.template.channel != campaign.channel for v in variants):
        errors["variants"] = "Every message must be of the campaign's channel."
    if len(variants) < 2 and campaign.test_percent < 100:
        errors["test_percent"] = (
            "An A/B test needs two variants or more: add one, or send to 100% of the audience."
        )
    if (
        len(variants) >= 2
        and campaign.test_percent < 100
        and campaign.schedule == Campaign.Schedule.LOCAL
    ):
        # Those waiting for the winner would be due at the winner's time, not their own.
        errors["test_percent"] = (
            "A winner step can't be combined with sending at each recipient's local time: "
            "send the test to everyone (100 %) or pick one time for all."
        )
    kind = campaign.schedule
    if kind == Campaign.Schedule.AT:
        if campaign.send_at is None:
            errors["send_at"] = "Pick the date and time to send."
        elif campaign.send_at <= at:
            errors["send_at"] = "This time has passed: pick one in the future."
    elif kind == Campaign.Schedule.LOCAL:
        if campaign.local_date is None:
            errors["local_date"] = "Pick the day to send."
        if campaign.local_time is None:
            errors["local_time"] = "Pick the time of day to send."
        if campaign.local_date and campaign.local_time:
            moment = schedules.local_moment(
                campaign.local_date, campaign.local_time, schedules.zone(campaign.tenant.timezone)
            )
            if moment <= at:
                errors["local_date"] = (
                    "This day and time have passed in your team's time zone: pick a later one."
                )
    elif kind == Campaign.Schedule.RECURRING:
        problems = schedules.cron_errors(vars(campaign))
        errors.update(problems)
        if not problems and dispatch.next_slot(campaign, after=at) is None:
            errors["recurring_until"] = "The schedule ends before it would first send."
    return errors


def _first_send(campaign: Campaign, at: datetime) -> datetime | None:
    kind = campaign.schedule
    if kind == Campaign.Schedule.NOW:
        return at
    if kind == Campaign.Schedule.AT:
        return campaign.send_at
    if kind == Campaign.Schedule.LOCAL:
        # The earliest zone among the team's contacts: everyone is frozen then, each due at
        # their own local moment.
        from audience.models import Contact

        assert campaign.local_date and campaign.local_time
        zones = (
            Contact.objects.filter(tenant_id=campaign.tenant_id)
            .order_by()
            .values_list("timezone", flat=True)
            .distinct()
        )
        moments = schedules.local_moments(
            campaign.local_date, campaign.local_time, zones, campaign.tenant.timezone
        )
        return max(min(moments.values()), at)
    return dispatch.next_slot(campaign, after=at)


def _schedule(campaign: Campaign) -> None:
    """Check the campaign is ready, set when it first sends and keep its beat entry in step
    (caller holds its row lock)."""
    at = timezone.now()
    errors = ready_errors(campaign, at=at)
    if errors:
        raise ValidationError(errors)
    campaign.state = Campaign.State.SCHEDULED
    campaign.send_at = _first_send(campaign, at)
    campaign.updated_at = at
    if campaign.schedule == Campaign.Schedule.RECURRING:
        _periodic_task_sync(campaign)
    else:
        periodic_task_remove(campaign=campaign)
    campaign.save()
    if campaign.schedule == Campaign.Schedule.NOW:
        pk = campaign.pk
        transaction.on_commit(lambda: _start_later(pk), robust=True)


def _start_later(campaign_id: int) -> None:
    from campaigns import tasks

    # The broker is down: the beat's tick starts it within seconds.
    with contextlib.suppress(Exception):
        tasks.campaign_start.apply_async((campaign_id,), retry=False)


def campaign_schedule(*, campaign: Campaign) -> Campaign:
    """Schedule a ready campaign (a draft, or a scheduled one again). "Send now" starts at
    once; a recurring campaign gets its beat entry."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if not campaign.editable:
            raise _state_error(
                f"This campaign is {campaign.get_state_display().lower()}: it can't be scheduled."
            )
        _schedule(campaign)
    return campaign


def campaign_unschedule(*, campaign: Campaign) -> Campaign:
    """Back to a draft: it sends nothing until scheduled again."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != Campaign.State.SCHEDULED:
            raise _state_error("Only a scheduled campaign can be unscheduled.")
        periodic_task_remove(campaign=campaign)
        campaign.state, campaign.updated_at = Campaign.State.DRAFT, timezone.now()
        campaign.save(update_fields=["state", "periodic_task", "updated_at"])
    return campaign


def _periodic_task_sync(campaign: Campaign) -> None:
    """The campaign's django-celery-beat entry: its crontab in the team's time zone. The beat
    entry only wakes it promptly; the tick would start a due slot anyway, and an occurrence is
    unique by slot, so a slot runs once however often it is fired."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    cron = schedules.cron_values(vars(campaign))
    spec = {
        "minute": cron["cron_minute"],
        "hour": cron["cron_hour"],
        "day_of_week": cron["cron_day_of_week"],
        "day_of_month": cron["cron_day_of_month"],
        "month_of_year": cron["cron_month_of_year"],
        "timezone": campaign.tenant.timezone or "UTC",
    }
    crontab = CrontabSchedule.objects.filter(**spec).first() or CrontabSchedule.objects.create(
        **spec
    )
    task = None
    if campaign.periodic_task_id:
        task = PeriodicTask.objects.filter(pk=campaign.periodic_task_id).first()
    task = task or PeriodicTask()
    task.name = f"campaign {campaign.public_id}: {campaign.name}"[:200]
    task.task = RECURRING_TASK
    task.crontab = crontab
    task.interval = task.solar = task.clocked = None
    task.kwargs = json.dumps({"campaign_id": str(campaign.public_id)})
    task.expires = campaign.recurring_until
    task.enabled = True
    task.description = f"Recurring campaign “{campaign.name}” (team {campaign.tenant.slug})"
    task.save()
    campaign.periodic_task = task


def periodic_task_remove(*, campaign: Campaign) -> None:
    """Remove the campaign's beat entry (the campaign no longer recurs)."""
    if campaign.periodic_task_id:
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).delete()
        campaign.periodic_task = None


# --- while it sends --------------------------------------------------------------------------


def _open_occurrence(campaign: Campaign) -> Occurrence | None:
    return (
        Occurrence.objects.filter(campaign=campaign, state__in=dispatch.OPEN)
        .order_by("-started_at")
        .first()
    )


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Stop sending. Nothing more is released, and the campaign's messages still queued in the
    outbox are taken back (their recipients wait again), so the pause takes effect within
    seconds even when everyone was already released: only messages a sender has already taken
    (a batch being sent) still go. Resuming carries on with exactly the others."""
    from messaging.services import deliveries_withdraw_queued

    with transaction.atomic():
        # The row lock waits for release chunks in flight (they hold it FOR SHARE).
        campaign = _locked(campaign)
        if campaign.state != Campaign.State.SENDING:
            raise _state_error("Only a campaign that is sending can be paused.")
        at = timezone.now()
        withdrawn = deliveries_withdraw_queued(
            tenant=campaign.tenant,
            source=f"campaign:{campaign.public_id}",
            channel=campaign.channel,
        )
        for start in range(0, len(withdrawn), 10_000):
            Recipient.objects.filter(
                tenant_id=campaign.tenant_id, delivery_id__in=withdrawn[start : start + 10_000]
            ).update(released=False, delivery=None)
        campaign.state, campaign.paused_at, campaign.updated_at = Campaign.State.PAUSED, at, at
        campaign.save(update_fields=["state", "paused_at", "updated_at"])
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Carry on sending where the pause stopped. With a throttle, everyone still waiting is
    due later by the pause's length (the pace stays the same); without one, whoever came due
    meanwhile goes at once. An A/B test's winner is always chosen later by the pause's length
    (with those waiting for it), so that it is chosen on as long a test as planned."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != Campaign.State.PAUSED:
            raise _state_error("Only a paused campaign can be resumed.")
        at = timezone.now()
        occurrence = _open_occurrence(campaign)
        if occurrence is not None and campaign.paused_at:
            pause = at - campaign.paused_at
            waiting = Recipient.objects.filter(
                tenant_id=occurrence.tenant_id,
                occurrence=occurrence,
                released=False,
                holdout=False,
            )
            testing = bool(
                occurrence.state == Occurrence.State.TESTING and occurrence.winner_due_at
            )
            if not campaign.throttle_per_minute:
                waiting = waiting.filter(variant__isnull=True) if testing else waiting.none()
            waiting.update(due_at=F("due_at") + pause)
            if testing:
                assert occurrence.winner_due_at is not None
                occurrence.winner_due_at += pause
                occurrence.save(update_fields=["winner_due_at"])
        campaign.state, campaign.paused_at, campaign.updated_at = Campaign.State.SENDING, None, at
        campaign.save(update_fields=["state", "paused_at", "updated_at"])
        if occurrence is not None:
            pk = occurrence.pk
            transaction.on_commit(lambda: dispatch._release_later(pk), robust=True)
    return campaign


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Stop for good: no one else is released, and the campaign's messages still queued in
    the outbox are skipped ("campaign cancelled"). A recurring campaign stops recurring."""
    from messaging.services import deliveries_skip_queued

    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state not in (
            Campaign.State.SCHEDULED,
            Campaign.State.SENDING,
            Campaign.State.PAUSED,
        ):
            raise _state_error(
                "Only a scheduled, sending or paused campaign can be cancelled"
                + (": delete a draft instead." if campaign.state == Campaign.State.DRAFT else ".")
            )
        at = timezone.now()
        Occurrence.objects.filter(campaign=campaign, state__in=dispatch.OPEN).update(
            state=Occurrence.State.CANCELLED, finished_at=at
        )
        deliveries_skip_queued(
            tenant=campaign.tenant, source=f"campaign:{campaign.public_id}", reason=CANCELLED_REASON
        )
        periodic_task_remove(campaign=campaign)
        campaign.state, campaign.paused_at, campaign.updated_at = Campaign.State.CANCELLED, None, at
        campaign.save(update_fields=["state", "paused_at", "periodic_task", "updated_at"])
    return campaign


def campaign_delete(*, campaign: Campaign) -> None:
    """Delete the campaign with its occurrences and recipients (the messages it sent stay in
    the outbox and on the contacts). A sending or paused one must be cancelled first."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state in (Campaign.State.SENDING, Campaign.State.PAUSED):
            raise _state_error("This campaign is sending: cancel it before deleting it.")
        periodic_task_remove(campaign=campaign)
        # Children first, each by an index of its own: left to the ORM's cascade, the
        # variants' recipients would be looked up by variant, which has no index (a scan of
        # every team's recipients).
        db = Campaign.objects.db
        occurrences = list(
            Occurrence.objects.filter(campaign=campaign).values_list("pk", flat=True)
        )
        Recipient.objects.filter(
            tenant_id=campaign.tenant_id, occurrence_id__in=occurrences
        )._raw_delete(db)
        Occurrence.objects.filter(pk__in=occurrences)._raw_delete(db)
        Variant.objects.filter(campaign=campaign)._raw_delete(db)
        campaign.delete()


def campaign_duplicate(*, campaign: Campaign, user: Any = None) -> Campaign:
    """A draft copy: same audience, messages and settings, named "<name> (copy)"."""
    with transaction.atomic():
        # Names are unique regardless of case; the suffix always fits (the name is cut first).
        names = {
            n.lower()
            for n in Campaign.objects.filter(tenant_id=campaign.tenant_id).values_list(
                "name", flat=True
            )
        }
        limit = Campaign._meta.get_field("name").max_length or 120

        def named(suffix: str) -> str:
            return f"{campaign.name[: limit - len(suffix)].rstrip()}{suffix}"

        name, n = named(" (copy)"), 2
        while name.lower() in names:
            name, n = named(f" (copy {n})"), n + 1
        copy = Campaign(
            tenant_id=campaign.tenant_id,
            created_by=user if user and user.pk else None,
            **{f: getattr(campaign, f) for f in EDITABLE_FIELDS if f != "name"},
            name=name,
        )
        copy.save()
        CampaignSegment.objects.bulk_create(
            CampaignSegment(
                tenant_id=campaign.tenant_id,
                campaign=copy,
                segment_id=s.segment_id,
                exclude=s.exclude,
            )
            for s in CampaignSegment.objects.filter(campaign=campaign)
        )
        Variant.objects.bulk_create(
            Variant(
                tenant_id=campaign.tenant_id,
                campaign=copy,
                key=v.key,
                template_id=v.template_id,
                weight=v.weight,
            )
            for v in Variant.objects.filter(campaign=campaign)
        )
    return copy


def campaign_demo_seed(*, tenant: Tenant, actor: Any = None) -> int:
    """The demo tenant's campaigns (campaigns/demo.py): the campaigns made, 0 when seeded
    already."""
    from campaigns.demo import demo_seed

    return int(demo_seed(tenant=tenant, actor=actor))


# --- dispatch, as services -------------------------------------------------------------------

occurrence_start = dispatch.occurrence_start
recipients_release = dispatch.recipients_release
occurrence_winner_decide = dispatch.occurrence_winner_decide

__all__ = [
    "campaign_cancel",
    "campaign_create",
    "campaign_delete",
    "campaign_demo_seed",
    "campaign_duplicate",
    "campaign_pause",
    "campaign_resume",
    "campaign_schedule",
    "campaign_unschedule",
    "campaign_update",
    "occurrence_start",
    "occurrence_winner_decide",
    "recipients_release",
]
