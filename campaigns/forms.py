"""The campaign editor's form: what the marketer types, shaped into the fields campaigns.services
takes. The services have the last word (readiness, templates of the right channel, the team's
segments); this module only parses, checks what a form can check alone, and turns the schedule
presets into crontab fields and back.

Times a marketer types are in the team's time zone: the views activate it for the request, so
Django's date-time fields read and show them there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from campaigns.models import Campaign
from messaging.models import Category, Channel, Template

MAX_VARIANTS = 5
VARIANT_KEYS = "ABCDE"
# Goals most shops measure, offered beside the team's own recent event names.
GOAL_SUGGESTIONS = ("Order Completed", "Checkout Started", "Signed Up", "Product Added")

RECUR_DAILY, RECUR_WEEKLY, RECUR_MONTHLY, RECUR_CRON = "daily", "weekly", "monthly", "cron"
RECUR_CHOICES = [
    (RECUR_DAILY, "Every day"),
    (RECUR_WEEKLY, "Every week"),
    (RECUR_MONTHLY, "Every month"),
    (RECUR_CRON, "Advanced (cron)"),
]
# crontab's day of week: 0 is Sunday.
WEEKDAYS = [
    ("1", "Monday"),
    ("2", "Tuesday"),
    ("3", "Wednesday"),
    ("4", "Thursday"),
    ("5", "Friday"),
    ("6", "Saturday"),
    ("0", "Sunday"),
]
WEEKDAY_NAMES = dict(WEEKDAYS)

_NUMBER = {"inputmode": "numeric", "class": "short"}


def _int(widget_attrs: dict[str, str] | None = None) -> forms.NumberInput:
    return forms.NumberInput(attrs={**_NUMBER, **(widget_attrs or {})})


class CampaignForm(forms.Form):
    """Everything but the variants (a list of rows, see `variants_from_post`)."""

    name = forms.CharField(
        max_length=120,
        error_messages={"required": "Give the campaign a name (only your team sees it)."},
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    category = forms.ChoiceField(
        choices=Category.choices,
        initial=Category.MARKETING,
        help_text="Marketing asks for consent and honours the frequency cap and quiet hours; "
        "transactional only the suppression list.",
    )
    segments = forms.MultipleChoiceField(
        label="Send to",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one segment to send to."},
    )
    exclude_segments = forms.MultipleChoiceField(
        label="But not to",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members of these segments get nothing, even when they are in one above.",
    )

    holdout_percent = forms.IntegerField(
        label="Hold-out",
        min_value=0,
        max_value=50,
        initial=0,
        widget=_int(),
        help_text="This share of the audience receives nothing, so the results show the lift "
        "over not sending. 0: no hold-out.",
    )
    test_percent = forms.IntegerField(
        label="Test group",
        min_value=1,
        max_value=100,
        initial=100,
        widget=_int(),
        help_text="In %. 100: a plain split, no winner.",
    )
    winner_metric = forms.ChoiceField(
        label="Winner by", choices=Campaign.WinnerMetric.choices, initial="opens"
    )
    winner_after_hours = forms.IntegerField(
        label="Decide after (hours)", min_value=1, max_value=168, initial=4, widget=_int()
    )

    schedule = forms.ChoiceField(
        label="When", choices=Campaign.Schedule.choices, initial="now", widget=forms.RadioSelect
    )
    send_at = forms.DateTimeField(
        label="Date and time",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    local_date = forms.DateField(
        label="Date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    local_time = forms.TimeField(
        label="Their local time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    recur_preset = forms.ChoiceField(label="Repeats", choices=RECUR_CHOICES, initial=RECUR_WEEKLY)
    recur_time = forms.TimeField(
        label="At",
        required=False,
        initial=time(9, 0),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    recur_weekday = forms.ChoiceField(label="On", choices=WEEKDAYS, initial="1", required=False)
    recur_monthday = forms.IntegerField(
        label="On day",
        min_value=1,
        max_value=28,
        initial=1,
        required=False,
        widget=_int(),
        help_text="1 to 28, so every month has it.",
    )
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"spellcheck": "false", "class": "code"}),
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. "
        "<code>0 9 * * 1-5</code> (9:00 on weekdays).",
    )
    recurring_until = forms.DateField(
        label="Until (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day it may go out.",
    )

    throttle_per_minute = forms.IntegerField(
        label="At most (messages a minute)",
        min_value=1,
        required=False,
        widget=_int(),
        help_text="Empty: as fast as the senders go.",
    )
    send_time_optimized = forms.BooleanField(
        label="Send at each recipient's best hour",
        required=False,
        help_text="The hour they most often open or click (from their own history, else your "
        "team's).",
    )
    sto_window_hours = forms.IntegerField(
        label="Within (hours)", min_value=1, max_value=168, initial=24, widget=_int()
    )

    goal_event = forms.CharField(
        label="Conversion event",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "campaign-event-names", "autocomplete": "off"}),
        help_text="Empty: no conversion goal.",
    )
    goal_window_hours = forms.IntegerField(
        label="Counted within (hours)", min_value=1, max_value=2160, initial=72, widget=_int()
    )
    goal_revenue_property = forms.CharField(
        label="Revenue from property",
        required=False,
        max_length=100,
        initial="revenue",
        help_text="The event's property that holds the order's value.",
    )

    def __init__(self, *args: Any, segments: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segments"].choices = segments  # type: ignore[attr-defined]
        self.fields["exclude_segments"].choices = segments  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        both = set(data.get("segments") or []) & set(data.get("exclude_segments") or [])
        if both:
            self.add_error(
                "exclude_segments", "A segment cannot be both sent to and kept out; untick one."
            )
        schedule = data.get("schedule")
        if schedule == Campaign.Schedule.AT and not data.get("send_at"):
            self.add_error("send_at", "Choose the date and time to send.")
        if schedule == Campaign.Schedule.LOCAL:
            if not data.get("local_date"):
                self.add_error("local_date", "Choose the day.")
            if not data.get("local_time"):
                self.add_error("local_time", "Choose the time of day.")
        if schedule == Campaign.Schedule.RECURRING:
            self._clean_recurring(data)
        return data

    def _clean_recurring(self, data: dict[str, Any]) -> None:
        preset = data.get("recur_preset")
        if preset == RECUR_CRON:
            try:
                data["cron_fields"] = cron_parse(data.get("cron", ""))
            except ValueError as exc:
                self.add_error("cron", str(exc))
            return
        at = data.get("recur_time")
        if at is None:
            self.add_error("recur_time", "Choose the time of day.")
            return
        fields = {
            "cron_minute": str(at.minute),
            "cron_hour": str(at.hour),
            "cron_day_of_week": "*",
            "cron_day_of_month": "*",
            "cron_month_of_year": "*",
        }
        if preset == RECUR_WEEKLY:
            if not data.get("recur_weekday"):
                self.add_error("recur_weekday", "Choose the day of the week.")
                return
            fields["cron_day_of_week"] = data["recur_weekday"]
        elif preset == RECUR_MONTHLY:
            if not data.get("recur_monthday"):
                self.add_error("recur_monthday", "Choose the day of the month.")
                return
            fields["cron_day_of_month"] = str(data["recur_monthday"])
        data["cron_fields"] = fields

    def campaign_fields(self) -> dict[str, Any]:
        """The cleaned form as campaign_create/campaign_update's keyword arguments (segments
        and variants are the view's: they need the team's objects)."""
        data = self.cleaned_data
        schedule = data["schedule"]
        fields: dict[str, Any] = {
            "name": data["name"],
            "channel": data["channel"],
            "category": data["category"],
            "schedule": schedule,
            "send_at": data.get("send_at") if schedule == Campaign.Schedule.AT else None,
            "local_date": data.get("local_date") if schedule == Campaign.Schedule.LOCAL else None,
            "local_time": data.get("local_time") if schedule == Campaign.Schedule.LOCAL else None,
            "cron_minute": "",
            "cron_hour": "",
            "cron_day_of_week": "",
            "cron_day_of_month": "",
            "cron_month_of_year": "",
            "recurring_until": None,
            "throttle_per_minute": data.get("throttle_per_minute"),
            "send_time_optimized": bool(data.get("send_time_optimized")),
            "sto_window_hours": data.get("sto_window_hours") or 24,
            "test_percent": data.get("test_percent") or 100,
            "winner_metric": data.get("winner_metric") or "opens",
            "winner_after_hours": data.get("winner_after_hours") or 4,
            "holdout_percent": data.get("holdout_percent") or 0,
            "goal_event": data.get("goal_event", "").strip(),
            "goal_window_hours": data.get("goal_window_hours") or 72,
            "goal_revenue_property": data.get("goal_revenue_property", "").strip(),
        }
        if schedule == Campaign.Schedule.RECURRING:
            fields.update(data["cron_fields"])
            until: date | None = data.get("recurring_until")
            if until is not None:
                # The whole last day counts: until the next midnight in the team's zone.
                fields["recurring_until"] = timezone.make_aware(
                    datetime.combine(until + timedelta(days=1), time(0))
                )
        return fields

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict[str, Any]:
        initial: dict[str, Any] = {
            name: getattr(campaign, name)
            for name in (
                "name",
                "channel",
                "category",
                "schedule",
                "send_at",
                "local_date",
                "local_time",
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
        }
        chosen = list(campaign.segments.all())
        initial["segments"] = [str(s.segment.public_id) for s in chosen if not s.exclude]
        initial["exclude_segments"] = [str(s.segment.public_id) for s in chosen if s.exclude]
        initial.update(recur_initial(campaign))
        return initial


def recur_initial(campaign: Campaign) -> dict[str, Any]:
    """The recurring controls that show a campaign's crontab: a preset when it is one."""
    m, h = campaign.cron_minute, campaign.cron_hour
    dow, dom, moy = (
        campaign.cron_day_of_week,
        campaign.cron_day_of_month,
        campaign.cron_month_of_year,
    )
    initial: dict[str, Any] = {}
    if campaign.recurring_until is not None:
        local = timezone.localtime(campaign.recurring_until) - timedelta(seconds=1)
        initial["recurring_until"] = local.date()
    if not (m or h):
        return initial
    simple = m.isdigit() and h.isdigit() and moy in ("*", "")
    if simple and int(h) < 24 and int(m) < 60:
        initial["recur_time"] = time(int(h), int(m))
        if dow in ("*", "") and dom in ("*", ""):
            return {**initial, "recur_preset": RECUR_DAILY}
        if dow in WEEKDAY_NAMES and dom in ("*", ""):
            return {**initial, "recur_preset": RECUR_WEEKLY, "recur_weekday": dow}
        if dom.isdigit() and 1 <= int(dom) <= 28 and dow in ("*", ""):
            return {**initial, "recur_preset": RECUR_MONTHLY, "recur_monthday": int(dom)}
    return {
        **initial,
        "recur_preset": RECUR_CRON,
        "cron": " ".join(v or "*" for v in (m, h, dom, moy, dow)),
    }


def cron_parse(text: str) -> dict[str, str]:
    """'m h dom mon dow' → the campaign's cron fields; ValueError with a message a marketer
    can act on (the fields' own checks are the scheduler's, campaigns.schedules)."""
    from campaigns.schedules import cron_errors

    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            "Write five fields separated by spaces: minute hour day-of-month month day-of-week."
        )
    names = (
        "cron_minute",
        "cron_hour",
        "cron_day_of_month",
        "cron_month_of_year",
        "cron_day_of_week",
    )
    fields = dict(zip(names, parts, strict=True))
    errors = cron_errors(fields)
    if errors:
        raise ValueError(" ".join(errors.values()))
    return fields


def schedule_summary(campaign: Campaign) -> str:
    """The campaign's "when" in words, in the team's time zone (active for the request)."""
    schedule = campaign.schedule
    if schedule == Campaign.Schedule.NOW:
        if campaign.state == Campaign.State.DRAFT:
            return "As soon as it is scheduled"
        return "Right away"
    if schedule == Campaign.Schedule.AT:
        if campaign.send_at is None:
            return "At a time not chosen yet"
        return timezone.localtime(campaign.send_at).strftime("%a %-d %b %Y, %H:%M")
    if schedule == Campaign.Schedule.LOCAL:
        day = campaign.local_date.strftime("%a %-d %b %Y") if campaign.local_date else "a day"
        at = campaign.local_time.strftime("%H:%M") if campaign.local_time else "a time"
        return f"{day} at {at} in each recipient's time zone"
    recur = recur_initial(campaign)
    preset = recur.get("recur_preset")
    at = recur["recur_time"].strftime("%H:%M") if "recur_time" in recur else ""
    if preset == RECUR_DAILY:
        text = f"Every day at {at}"
    elif preset == RECUR_WEEKLY:
        text = f"Every {WEEKDAY_NAMES[recur['recur_weekday']]} at {at}"
    elif preset == RECUR_MONTHLY:
        text = f"Every month on day {recur['recur_monthday']} at {at}"
    elif preset == RECUR_CRON:
        text = f"Cron “{recur['cron']}”"
    else:
        return "Recurring, times not chosen yet"
    if "recurring_until" in recur:
        text += f", until {recur['recurring_until'].strftime('%-d %b %Y')}"
    return text


# --- variants ------------------------------------------------------------------------------------


@dataclass
class VariantRow:
    key: str
    template: str  # the template's public id, "" when none is chosen
    weight: str  # as typed
    error: str = ""


def variant_rows_initial(campaign: Campaign | None) -> list[VariantRow]:
    if campaign is None:
        return [VariantRow("A", "", "100")]
    rows = [
        VariantRow(v.key, str(v.template.public_id), str(v.weight))
        for v in campaign.variants.select_related("template")
    ]
    return rows or [VariantRow("A", "", "100")]


def variant_rows_posted(data: QueryDict, action: str = "") -> list[VariantRow]:
    """The rows as posted, after `action` ("add", or "remove:<n>"): weights are spread evenly
    again when a row comes or goes (the marketer adjusts them after)."""
    templates = data.getlist("variant_template")
    weights = data.getlist("variant_weight")
    count = max(len(templates), 1)
    pairs = [
        (templates[i] if i < len(templates) else "", weights[i] if i < len(weights) else "")
        for i in range(count)
    ]
    changed = False
    if action == "add" and len(pairs) < MAX_VARIANTS:
        pairs.append(("", ""))
        changed = True
    elif action.startswith("remove:") and len(pairs) > 1:
        try:
            index = int(action.removeprefix("remove:"))
        except ValueError:
            index = -1
        if 0 <= index < len(pairs):
            del pairs[index]
            changed = True
    if changed:
        shares = even_split(len(pairs))
        pairs = [(t, str(share)) for (t, _), share in zip(pairs, shares, strict=True)]
    return [VariantRow(VARIANT_KEYS[i], t, w) for i, (t, w) in enumerate(pairs)]


def even_split(n: int) -> list[int]:
    """100 split into n whole shares, the first ones a point bigger: 34/33/33."""
    base, extra = divmod(100, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def variants_clean(
    rows: list[VariantRow], templates: dict[str, Template], *, channel: str
) -> tuple[list[tuple[Template, int]], str]:
    """(template, weight) pairs for the service, and an error for the whole group ("" when
    none); each row's own problem goes on the row."""
    result: list[tuple[Template, int]] = []
    for row in rows:
        template = templates.get(row.template)
        if template is None:
            row.error = "Choose a template."
        elif template.channel != channel:
            row.error = f"This is a {template.get_channel_display().lower()} template."
        try:
            weight = 100 if len(rows) == 1 else int(row.weight)
        except ValueError:
            weight = 0
        if not 1 <= weight <= 100:
            row.error = row.error or "A share is a whole number from 1 to 100."
        if template is not None and not row.error:
            result.append((template, weight))
    if any(row.error for row in rows):
        return [], "Fix the variants marked below."
    if len(rows) > 1 and sum(w for _, w in result) != 100:
        return [], f"The shares add up to {sum(w for _, w in result)}%, not 100%."
    return result, ""
