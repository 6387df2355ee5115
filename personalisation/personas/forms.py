"""Forms of the personas page: run a clustering, save a persona as a segment."""

from __future__ import annotations

from django import forms

from personalisation.personas.clustering import K_MAX

K_CHOICES = [
    ("", "Auto (best of 3 to 6)"),
    *((str(k), f"{k} personas") for k in range(2, K_MAX + 1)),
]


class PersonaRunForm(forms.Form):
    k = forms.TypedChoiceField(
        label="How many personas",
        choices=K_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        help_text="Auto tries 3 to 6 and keeps the number whose groups are the most distinct.",
    )


class PersonaSaveForm(forms.Form):
    name = forms.CharField(label="Segment name", max_length=200, required=False)
