from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from core.forms import add_service_errors
from messaging import services
from messaging.models import (
    TEMPLATE_FIELDS,
    Delivery,
    PushSubscription,
    SenderIdentity,
    SendingPolicy,
    Suppression,
    Template,
)
from tenants.admin import TenantScopedAdmin


class TemplateAdminForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["tenant", *TEMPLATE_FIELDS]

    def _post_clean(self) -> None:
        # The same check as the editor, on the instance once the form's data is on it: Liquid
        # that does not parse or breaks the sandbox's limits is refused here too, so no
        # template can fail at send time.
        from messaging.rendering import template_errors

        super()._post_clean()  # type: ignore[misc]  # Django's (private), not in the stubs
        if not self.errors and (problems := template_errors(self.instance)):
            add_service_errors(self, ValidationError(problems))


@admin.register(Template)
class TemplateAdmin(TenantScopedAdmin):
    form = TemplateAdminForm
    list_display = ("name", "tenant", "channel", "updated_at")
    list_filter = ("channel",)
    search_fields = ("name", "subject", "title")
    readonly_fields = ("public_id", "created_at", "updated_at")


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    list_display = (
        "public_id",
        "tenant",
        "contact",
        "channel",
        "category",
        "status",
        "reason",
        "attempts",
        "created_at",
        "sent_at",
    )
    list_filter = ("status", "channel", "category")
    search_fields = ("idempotency_key", "source", "provider_id", "contact__email")
    raw_id_fields = ("contact", "template")
    show_full_result_count = False
    actions = ["retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deciding messages is for journeys, campaigns and the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the outbox is a record: operators read it and retry failures

    @admin.action(description="Retry the selected failed messages", permissions=["view"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = services.deliveries_retry(deliveries=queryset)
        messages.success(request, f"{count} failed message(s) queued again.")


@admin.register(PushSubscription)
class PushSubscriptionAdmin(TenantScopedAdmin):
    list_display = ("contact", "tenant", "active", "deactivated_reason", "created_at")
    list_filter = ("active",)
    raw_id_fields = ("contact",)
    readonly_fields = ("public_id", "endpoint", "p256dh", "auth", "created_at", "updated_at")


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin):
    list_display = ("address", "tenant", "reason", "created_at")
    list_filter = ("reason",)
    search_fields = ("address",)


@admin.register(SenderIdentity)
class SenderIdentityAdmin(TenantScopedAdmin):
    """Made with the tenant and kept for good: browsers subscribed with its public key (deleting
    the row gives the tenant new keys on next use, which cuts them off). The private key is
    never shown."""

    list_display = ("tenant", "sender_name", "sender_email", "reply_to_email")
    search_fields = ("tenant__name", "tenant__slug", "sender_email")
    fields = ("tenant", "sender_name", "sender_email", "reply_to_email", "vapid_public_key")
    readonly_fields = ("tenant", "vapid_public_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: SenderIdentity, form: Any, change: bool
    ) -> None:
        services.sender_identity_update(
            tenant=obj.tenant, **{f: getattr(obj, f) for f in services.SENDER_IDENTITY_FIELDS}
        )


@admin.register(SendingPolicy)
class SendingPolicyAdmin(TenantScopedAdmin):
    list_display = (
        "tenant",
        "require_opt_in",
        "frequency_cap",
        "quiet_start",
        "quiet_end",
        "hourly_limit",
    )
