from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from tenants.models import (
    RETENTION_MONTHS_MAX,
    RETENTION_MONTHS_MIN,
    ApiKeyKind,
    Role,
    Tenant,
    validate_tenant_slug,
)
from tenants.selectors import timezone_choices


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    name = forms.CharField(label="Team or company name", max_length=120)
    slug = forms.CharField(
        label="URL name",
        max_length=50,
        required=False,
        validators=[validate_tenant_slug],
        help_text=(
            "Your workspace lives at /t/your-url-name/. Leave empty to derive it from the name."
        ),
    )
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC")

    def clean(self) -> dict[str, object]:
        super().clean()
        _check_password_pair(self)
        return self.cleaned_data


def _check_password_pair(form: forms.Form) -> None:
    data = form.cleaned_data
    p1, p2 = data.get("password1"), data.get("password2")
    if p1 and p2 and p1 != p2:
        form.add_error("password2", "The two passwords differ.")
    elif p1:
        try:
            password_validation.validate_password(p1)
        except ValidationError as exc:
            form.add_error("password1", exc)


class InvitationAcceptForm(forms.Form):
    """A new account from an invitation: the address is the invitation's, so only a name and a
    password are asked for."""

    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, object]:
        super().clean()
        _check_password_pair(self)
        return self.cleaned_data


class TenantCreateForm(forms.Form):
    name = forms.CharField(label="Team or company name", max_length=120)
    slug = forms.CharField(
        label="URL name", max_length=50, required=False, validators=[validate_tenant_slug]
    )
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC")


class TenantSettingsForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=timezone_choices)

    class Meta:
        model = Tenant
        fields = ["name", "timezone"]


class RetentionForm(forms.Form):
    """How many months of raw events the team keeps (empty: the product's default). A setting
    that removes stored events the current one keeps needs `confirm` ticked: the nightly run
    deletes them for good."""

    event_retention_months = forms.IntegerField(
        label="Keep raw events for (months)",
        required=False,
        min_value=RETENTION_MONTHS_MIN,
        max_value=RETENTION_MONTHS_MAX,
        error_messages={
            "invalid": f"Enter a whole number of months, {RETENTION_MONTHS_MIN} to"
            f" {RETENTION_MONTHS_MAX}.",
            "min_value": f"Keep events for at least {RETENTION_MONTHS_MIN} month.",
            "max_value": f"Keep events for at most {RETENTION_MONTHS_MAX} months (ten years).",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
    )
    confirm = forms.BooleanField(
        label="Yes, remove these events for good", required=False, widget=forms.CheckboxInput
    )

    def months(self) -> int | None:
        value = self.cleaned_data.get("event_retention_months")
        return int(value) if value is not None else None

    def require_confirmation(self, removes: int) -> bool:
        """After is_valid(): when the new setting removes `removes` (> 0) stored events that
        the current one keeps, the box must be ticked; else a field error. True: fine."""
        if removes and not self.cleaned_data.get("confirm"):
            self.add_error("confirm", "Tick the box: these events cannot be brought back.")
            return False
        return True


class MemberAddForm(forms.Form):
    email = forms.EmailField(
        help_text="Someone without a Wayfarer account gets an email invitation to join."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where it will be used, e.g. “Shop backend”.")
    kind = forms.ChoiceField(choices=ApiKeyKind.choices, initial=ApiKeyKind.SECRET)
