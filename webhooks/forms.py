"""The endpoint form of Settings → Webhooks. Whether the URL may be called is the service's rule
(webhooks/services.py `url_validate`), asked here too so that every error shows at once."""

from __future__ import annotations

from django import forms

from webhooks.models import EventType
from webhooks.services import url_validate


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/wayfarer"}),
        help_text="Receives a POST with a JSON body for each event. https only; private and "
        "local addresses are refused.",
        error_messages={"required": "Enter the URL that receives the events."},
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event type."},
    )
    description = forms.CharField(
        max_length=200, required=False, help_text="For you: what receives these."
    )

    def clean_url(self) -> str:
        return url_validate(self.cleaned_data["url"])
