"""A service's ValidationError shown on the form that called it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from core.forms import add_service_errors


class NameForm(forms.Form):
    name = forms.CharField()


def bound() -> NameForm:
    form = NameForm(data={"name": "Acme"})
    assert form.is_valid()
    return form


def test_it_puts_an_error_on_the_field_the_service_names() -> None:
    form = bound()
    add_service_errors(form, ValidationError({"name": ["This name is taken."]}))
    assert form.errors == {"name": ["This name is taken."]}


def test_it_puts_errors_for_fields_the_form_lacks_on_the_form_as_a_whole() -> None:
    form = bound()
    add_service_errors(form, ValidationError({"slug": ["Taken."], "name": ["Too short."]}))
    assert form.non_field_errors() == ["Taken."]
    assert form.errors["name"] == ["Too short."]


def test_it_puts_an_error_without_a_field_on_the_form_as_a_whole() -> None:
    form = bound()
    add_service_errors(form, ValidationError("The team has reached its limit."))
    assert form.non_field_errors() == ["The team has reached its limit."]
