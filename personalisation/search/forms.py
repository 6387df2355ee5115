"""Forms of product search: the parameters of a search (the browser endpoint and the try-it box
read them the same way) and the synonym editor."""

from __future__ import annotations

from typing import Any

from django import forms

from personalisation.search import text
from personalisation.search.models import ALTERNATIVES_MAX, QUERY_MAX, TERM_MAX

LIMIT_DEFAULT, LIMIT_MAX = 10, 50
OFFSET_MAX = 1_000  # deeper pages are not a search any more
CATEGORY_MAX = 200


class SearchParamsForm(forms.Form):
    q = forms.CharField(
        label="Search for",
        max_length=QUERY_MAX,
        strip=True,
        error_messages={"required": "Type what to search for."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. sneekers", "type": "search"}),
    )
    limit = forms.IntegerField(
        min_value=1, max_value=LIMIT_MAX, required=False, widget=forms.HiddenInput
    )
    offset = forms.IntegerField(
        min_value=0, max_value=OFFSET_MAX, required=False, widget=forms.HiddenInput
    )
    category = forms.CharField(max_length=CATEGORY_MAX, required=False, strip=True)

    def clean_q(self) -> str:
        query: str = self.cleaned_data["q"]
        if not text.words(query):
            raise forms.ValidationError("Type at least one letter or digit.")
        return query

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or LIMIT_DEFAULT

    def clean_offset(self) -> int:
        return self.cleaned_data["offset"] or 0


class TryItForm(SearchParamsForm):
    """The insights page's try-it box: a search as a contact would see it."""

    contact = forms.CharField(
        label="As contact (email or user id)",
        max_length=320,
        required=False,
        strip=True,
        help_text="Ranks the results by this contact's taste. Try-it searches are not counted.",
    )


class SynonymForm(forms.Form):
    term = forms.CharField(
        label="When shoppers search for",
        max_length=TERM_MAX,
        error_messages={"required": "Enter the word or words shoppers type."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. trainers"}),
    )
    alternatives = forms.CharField(
        label="Also find",
        max_length=(TERM_MAX + 2) * ALTERNATIVES_MAX,
        error_messages={"required": "Enter at least one other word to search for."},
        help_text=f"Comma-separated, up to {ALTERNATIVES_MAX}: e.g. sneakers, running shoes.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. sneakers, running shoes"}),
    )

    def clean_alternatives(self) -> list[str]:
        raw: str = self.cleaned_data["alternatives"]
        return [part.strip() for part in raw.split(",") if part.strip()]

    @staticmethod
    def initial_for(term: str, alternatives: list[str]) -> dict[str, Any]:
        return {"term": term, "alternatives": ", ".join(alternatives)}
