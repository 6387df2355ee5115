"""Forms of the messaging UI: the template editor, the outbox filters, sending settings and the
suppression list. Saving goes through messaging.services; these only read and shape input."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from messaging.models import (
    EMAIL_FIELDS,
    PUSH_FIELDS,
    Channel,
    Delivery,
    SenderIdentity,
    SendingPolicy,
    Template,
)
from tenants.models import Tenant

MAX_ACTIONS = 2  # what browsers show on a notification
ACTION_SLOTS = tuple(range(1, MAX_ACTIONS + 1))

# Each channel's fields in the editor, in order (the actions are their own fieldset).
EDITOR_FIELDS = {
    Channel.EMAIL: ("name", "subject", "preheader", "html"),
    Channel.PUSH: ("name", "title", "body", "icon_url", "image_url", "target_url"),
}
LIQUID_FIELDS = {Channel.EMAIL: EMAIL_FIELDS, Channel.PUSH: PUSH_FIELDS}

_CODE = {"spellcheck": "false", "autocomplete": "off", "class": "code"}


def channel_or_default(value: object) -> Channel:
    return Channel(value) if value in Channel.values else Channel.EMAIL


class TemplateForm(forms.Form):
    """One template, for one channel: the other channel's fields are not on the form."""

    name = forms.CharField(max_length=120, help_text="Only your team sees it.")
    subject = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs=_CODE))
    preheader = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs=_CODE),
        help_text="The line inboxes show after the subject.",
    )
    html = forms.CharField(
        label="HTML",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={**_CODE, "rows": 16}),
        help_text="Liquid works everywhere: {{ contact.first_name }}, {% if %}, {% for %}. "
        "CSS in a <style> block is inlined when it is sent; a plain-text part is made from it.",
    )
    title = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs=_CODE))
    body = forms.CharField(
        required=False, widget=forms.Textarea(attrs={**_CODE, "rows": 3}), strip=False
    )
    icon_url = forms.CharField(
        label="Icon URL", max_length=1000, required=False, widget=forms.TextInput(attrs=_CODE)
    )
    image_url = forms.CharField(
        label="Image URL", max_length=1000, required=False, widget=forms.TextInput(attrs=_CODE)
    )
    target_url = forms.CharField(
        label="Target URL",
        max_length=1000,
        required=False,
        widget=forms.TextInput(attrs=_CODE),
        help_text="Opened when the notification is clicked.",
    )
    # Never rendered: it carries the errors about the actions (set from the slots in clean()).
    actions = forms.Field(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        channel: str,
        tenant: Tenant | None = None,
        template: Template | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel_or_default(channel)
        self.tenant, self.template = tenant, template
        keep = set(EDITOR_FIELDS[self.channel]) | {"actions"}
        if self.channel == Channel.PUSH:
            for n in ACTION_SLOTS:
                for part, label in (("title", "Button"), ("url", "Opens")):
                    key = f"action{n}_{part}"
                    self.fields[key] = forms.CharField(
                        label=label,
                        max_length=1000 if part == "url" else 100,
                        required=False,
                        widget=forms.TextInput(attrs=_CODE),
                    )
                    keep.add(key)
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        for name, field in self.fields.items():
            # The live preview fills these in with the Liquid errors of the field.
            field.widget.attrs.setdefault("aria-describedby", f"errors-{name}")

    @classmethod
    def initial_for(cls, template: Template) -> dict[str, Any]:
        channel = channel_or_default(template.channel)
        initial: dict[str, Any] = {name: getattr(template, name) for name in EDITOR_FIELDS[channel]}
        for n, action in enumerate(template.actions[:MAX_ACTIONS], start=1):
            initial[f"action{n}_title"] = action.get("title", "")
            initial[f"action{n}_url"] = action.get("url", "")
        return initial

    def clean_name(self) -> str:
        # The database's constraint names no field; say it beside the name instead.
        name = self.cleaned_data["name"].strip()
        if self.tenant is not None:
            from messaging.selectors import template_name_taken

            if template_name_taken(tenant=self.tenant, name=name, template=self.template):
                raise forms.ValidationError("A template with this name already exists.")
        return name

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.channel == Channel.PUSH:
            actions = []
            for n in ACTION_SLOTS:
                title = (data.get(f"action{n}_title") or "").strip()
                url = (data.get(f"action{n}_url") or "").strip()
                if title and not url:
                    self.add_error(f"action{n}_url", "Give the button a URL to open.")
                elif url and not title:
                    self.add_error(f"action{n}_title", "Give the button a label.")
                elif title:
                    actions.append({"action": f"action{n}", "title": title, "url": url})
            data["actions"] = actions
        else:
            data["actions"] = []
        return data

    def template_fields(self) -> dict[str, Any]:
        """What services.template_save takes, from a valid form."""
        fields = {name: self.cleaned_data[name] for name in EDITOR_FIELDS[self.channel]}
        if self.channel == Channel.PUSH:
            fields["actions"] = self.cleaned_data["actions"]
        return fields


def template_draft(
    *, tenant: Tenant, channel: str, data: QueryDict, template: Template | None = None
) -> Template:
    """An unsaved template holding what the editor posted, valid or not, to preview it: a
    marketer sees their subject line before they have named the template."""
    channel = channel_or_default(template.channel if template else channel)
    draft = Template(tenant=tenant, channel=channel, name=data.get("name", "")[:120])
    if template is not None:
        draft.public_id = template.public_id
    for name in EDITOR_FIELDS[channel]:
        if name != "name":
            setattr(draft, name, data.get(name, ""))
    if channel == Channel.PUSH:
        draft.actions = [
            {
                "action": f"action{n}",
                "title": data.get(f"action{n}_title", "").strip(),
                "url": data.get(f"action{n}_url", "").strip(),
            }
            for n in ACTION_SLOTS
            if data.get(f"action{n}_title", "").strip()
        ]
    return draft


class SendTestForm(forms.Form):
    """Whom a test goes to: one of the team's members with a confirmed address (the choices,
    from selectors.send_test_recipients), never an address typed in."""

    test_to = forms.ChoiceField(label="Send to", choices=())

    def __init__(self, *args: Any, recipients: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["test_to"].choices = recipients  # type: ignore[attr-defined]


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Delivery.Status.choices]
    )
    channel = forms.ChoiceField(required=False, choices=[("", "Any channel"), *Channel.choices])


class SenderIdentityForm(forms.ModelForm):
    class Meta:
        model = SenderIdentity
        fields = ["sender_name", "sender_email", "reply_to_email"]
        labels = {
            "sender_name": "Sender name",
            "sender_email": "Sender email",
            "reply_to_email": "Reply-To",
        }
        help_texts = {
            "sender_email": "The From address of your messages, and whom push services may "
            "contact about your push messages.",
            "reply_to_email": "Where replies go, when not to the sender (optional).",
        }


class SendingPolicyForm(forms.ModelForm):
    class Meta:
        model = SendingPolicy
        fields = [
            "require_opt_in",
            "frequency_cap",
            "frequency_window_hours",
            "quiet_start",
            "quiet_end",
            "hourly_limit",
        ]
        labels = {
            "require_opt_in": "Require opt-in for marketing",
            "frequency_cap": "Frequency cap",
            "frequency_window_hours": "Cap window (hours)",
            "quiet_start": "Quiet hours start",
            "quiet_end": "Quiet hours end",
            "hourly_limit": "Messages per hour",
        }
        help_texts = {
            "frequency_window_hours": "The cap counts a contact's messages in this many hours "
            "(1 to 744).",
            "quiet_start": "In each contact's own time zone (the team's when unknown). "
            "A start after the end spans midnight, e.g. 21:00 to 08:00.",
            "quiet_end": "Messages due in quiet hours wait until they end.",
            "hourly_limit": "For the whole team, across channels; 0 means no limit. Messages "
            "over it wait for the next hour.",
        }
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if start is not None and start == end:
            self.add_error("quiet_end", "The end must differ from the start (or leave both empty).")
        return data


class SuppressionForm(forms.Form):
    address = forms.EmailField(label="Email address", max_length=254)
    detail = forms.CharField(
        label="Note", max_length=500, required=False, help_text="Why, for your team (optional)."
    )


class SuppressionSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=254)
