"""The survey form: the survey's fields and five question slots (short surveys), so it works
without JavaScript; empty slots are left out. The rules are the service's
(personalisation/surveys/services.py); its errors come back on the fields they name."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from personalisation.surveys.models import MAX_QUESTIONS, QuestionType, Survey, SurveyKind

SLOTS = range(1, MAX_QUESTIONS + 1)


class SurveyForm(forms.Form):
    # Name and question are required by the service, which checks everything at once: a form
    # that stopped at its own checks would show the questions' errors only on a second try.
    name = forms.CharField(max_length=120, required=False, help_text="Shown as the page's title.")
    kind = forms.ChoiceField(
        choices=SurveyKind.choices, widget=forms.RadioSelect, initial=SurveyKind.NPS
    )
    question = forms.CharField(
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="NPS: the 0-10 question, e.g. “How likely are you to recommend us to a "
        "friend?”. Short survey: a line of introduction.",
    )
    thanks = forms.CharField(
        max_length=300, required=False, help_text="Shown after answering (optional)."
    )
    key = forms.CharField(
        max_length=50,
        required=False,
        help_text="Its name in message templates: {{ surveys.<key>.url }}. Made from the name "
        "when left empty.",
    )
    active = forms.BooleanField(
        required=False, initial=True, label="Open: takes answers", help_text=""
    )

    def __init__(self, *args: Any, survey: Survey | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.survey = survey
        if survey is not None:
            del self.fields["kind"]  # answers already given are of this kind
        for n in SLOTS:
            self.fields[f"q{n}_id"] = forms.CharField(required=False, widget=forms.HiddenInput)
            self.fields[f"q{n}_type"] = forms.ChoiceField(
                label="Type",
                choices=[("", "—"), *QuestionType.choices],
                required=False,
            )
            self.fields[f"q{n}_label"] = forms.CharField(
                label="Question", max_length=200, required=False
            )
            self.fields[f"q{n}_choices"] = forms.CharField(
                label="Choices (one a line)",
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
            )

    @classmethod
    def initial_for(cls, survey: Survey) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": survey.name,
            "question": survey.question,
            "thanks": survey.thanks,
            "key": survey.key,
            "active": survey.active,
        }
        for n, q in enumerate(survey.question_list(), start=1):
            initial[f"q{n}_id"] = q["id"]
            initial[f"q{n}_type"] = q["type"]
            initial[f"q{n}_label"] = q["label"]
            initial[f"q{n}_choices"] = "\n".join(q.get("choices") or [])
        return initial

    def slots(self) -> list[dict[str, Any]]:
        """The question slots' bound fields, for the template."""
        return [
            {
                "n": n,
                "id": self[f"q{n}_id"],
                "type": self[f"q{n}_type"],
                "label": self[f"q{n}_label"],
                "choices": self[f"q{n}_choices"],
            }
            for n in SLOTS
        ]

    def questions(self) -> list[dict[str, Any]]:
        """The filled slots as the service takes them; `_slot` maps errors back."""
        found = []
        for n in SLOTS:
            data = {k: self.cleaned_data.get(f"q{n}_{k}") or "" for k in ("id", "type", "label")}
            choices = self.cleaned_data.get(f"q{n}_choices") or ""
            if not (data["type"] or data["label"].strip()):
                continue
            found.append({**data, "choices": choices.splitlines(), "_slot": n})
        return found

    def service_errors(self, exc: ValidationError, questions: list[dict[str, Any]]) -> None:
        """A service refusal on the fields it names: questions.<i>.<part> → its slot's field."""
        for name, messages in exc.message_dict.items():
            parts = name.split(".")
            if parts[0] == "questions" and len(parts) >= 2 and parts[1].isdigit():
                index = int(parts[1]) - 1
                slot = questions[index]["_slot"] if index < len(questions) else 1
                part = parts[2] if len(parts) > 2 else "label"
                self.add_error(
                    f"q{slot}_{part if part in ('type', 'label', 'choices') else 'label'}", messages
                )
            elif name in self.fields:
                self.add_error(name, messages)
            else:
                self.add_error(None, messages)
