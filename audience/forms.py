from __future__ import annotations

import calendar
import json
from typing import Any, cast

from django import forms

from audience.models import Consent, Contact, LifecycleStage, StageRules
from tenants.selectors import timezone_choices


class ContactFilterForm(forms.Form):
    q = forms.CharField(
        required=False, label="Search", help_text="Start of email or name, or a user id"
    )
    stage = forms.ChoiceField(
        required=False,
        label="Lifecycle stage",
        choices=[("", "Any stage"), *LifecycleStage.choices],
    )


class ContactForm(forms.ModelForm):
    timezone = forms.ChoiceField(
        required=False, choices=lambda: [("", "— the team's time zone —"), *timezone_choices()]
    )
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text='A JSON object, e.g. {"plan": "gold", "shoe_size": 42}.',
    )

    class Meta:
        model = Contact
        fields = [
            "email",
            "first_name",
            "last_name",
            "phone",
            "timezone",
            "locale",
            "birthday_month",
            "birthday_day",
            "birth_year",
            "email_consent",
            "push_consent",
        ]
        widgets = {"email_consent": forms.RadioSelect, "push_consent": forms.RadioSelect}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["email_consent"]).choices = Consent.choices
        cast(forms.ChoiceField, self.fields["push_consent"]).choices = Consent.choices
        if self.instance and not self.is_bound:
            self.initial["attributes"] = json.dumps(self.instance.attributes, indent=2)

    def clean_attributes(self) -> dict[str, Any]:
        raw = self.cleaned_data["attributes"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Attributes must be a JSON object: {"name": value, …}.')
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        month, day = data.get("birthday_month"), data.get("birthday_day")
        if (month is None) != (day is None):
            self.add_error("birthday_day", "Give the birthday's month and day together.")
        elif month is not None and day is not None:
            if not 1 <= month <= 12:
                self.add_error("birthday_month", "A month is 1 to 12.")
            elif not 1 <= day <= calendar.monthrange(2000, month)[1]:  # 2000: 29 Feb is valid
                self.add_error("birthday_day", f"Month {month} has no day {day}.")
        return data


class EventNamesField(forms.CharField):
    """Event names, one per line (blank lines dropped): a list."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


class StageRulesForm(forms.ModelForm):
    """The team's lifecycle stage rules; the model's clean() holds the ranges."""

    nps_events = EventNamesField(
        required=False,
        label="NPS events",
        help_text="One event name per line. Its numeric <code>score</code> property is the answer.",
    )
    advocacy_events = EventNamesField(
        required=False,
        label="Advocacy events",
        help_text="One event name per line: reviews, shares, referrals.",
    )

    class Meta:
        model = StageRules
        fields = [
            "onboarding_days",
            "active_days",
            "drifting_days",
            "advocacy_days",
            "promoter_min_score",
            "nps_events",
            "advocacy_events",
        ]
        labels = {
            "onboarding_days": "Onboarding lasts (days)",
            "active_days": "Active buyer: ordered within (days)",
            "drifting_days": "Drifting: not seen for (days)",
            "advocacy_days": "A promoter score, review or referral counts for (days)",
            "promoter_min_score": "Lowest promoter score (0 to 10)",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("onboarding_days", "active_days", "drifting_days", "advocacy_days"):
            self.fields[name].widget.attrs.update(min=1, max=StageRules.MAX_DAYS)
        self.fields["promoter_min_score"].widget.attrs.update(min=0, max=StageRules.MAX_SCORE)
