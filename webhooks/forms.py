"""The endpoint form of Settings → Webhooks. Whether the URL may be called is the service's to
say (webhooks/services.py); its errors land on the fields here."""

from __future__ import annotations

from django import forms

from webhooks.models import EventType


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
