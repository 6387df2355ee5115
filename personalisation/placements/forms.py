"""The marketer's forms of placements: a placement (key, name, description) and a variant
(content, targets, active). The services validate again (models.full_clean); their errors are
shown on these forms' fields (core.forms.add_service_errors)."""

from __future__ import annotations

from typing import Any

from django import forms

from audience.models import LifecycleStage
from personalisation.placements.models import key_validate, url_validate
from segments.models import Segment
from tenants.models import Tenant


class PlacementForm(forms.Form):
    key = forms.CharField(
        max_length=64,
        validators=[key_validate],
        widget=forms.TextInput(attrs={"placeholder": "home-banner", "autocomplete": "off"}),
        help_text='What your pages name: <div data-wayfarer-placement="home-banner">.',
        error_messages={"required": "Give the placement a key."},
    )
    name = forms.CharField(
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Home page banner"}),
        error_messages={"required": "Give the placement a name."},
    )
    description = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For your team: where it shows, what it is for.",
    )


class VariantForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        help_text="For you and the reports (e.g. “Outdoor lovers”).",
        error_messages={"required": "Give the variant a name."},
    )
    title = forms.CharField(
        max_length=200, error_messages={"required": "Write the title visitors see."}
    )
    body = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    image_url = forms.CharField(
        label="Image URL",
        max_length=2000,
        required=False,
        validators=[url_validate],
        widget=forms.TextInput(attrs={"placeholder": "https://cdn.example.com/banner.jpg"}),
    )
    link_url = forms.CharField(
        label="Link URL",
        max_length=2000,
        required=False,
        validators=[url_validate],
        widget=forms.TextInput(attrs={"placeholder": "/collections/outdoor"}),
    )
    link_text = forms.CharField(
        max_length=80,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Shop now"}),
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        empty_label="Any visitor",
        to_field_name="public_id",
        help_text="Shown only to members of this segment.",
    )
    lifecycle_stage = forms.ChoiceField(
        label="Lifecycle stage",
        choices=[("", "Any stage"), *LifecycleStage.choices],
        required=False,
        help_text="With a segment too, both must hold. With neither, this variant is the "
        "default: shown when no targeted variant matches.",
    )
    active = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Inactive variants are never shown; their figures stay.",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.filter(tenant=tenant).order_by(  # type: ignore[attr-defined]
            "name"
        )
