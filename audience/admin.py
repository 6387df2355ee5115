from __future__ import annotations

from django.contrib import admin

from audience.models import Contact, Event, Identity
from tenants.admin import TenantScopedAdmin


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ("kind", "value", "created_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "email", "user_id", "lifecycle_stage", "last_seen_at")
    list_filter = ("lifecycle_stage", "email_consent", "push_consent")
    search_fields = ("email", "user_id", "first_name", "last_name")
    readonly_fields = (
        "public_id",
        "created_at",
        "last_seen_at",
        "cart",
        "wishlist",
        "recently_viewed",
    )
    inlines = [IdentityInline]
    show_full_result_count = False  # counting millions of contacts on every page is slow


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "contact", "type", "occurred_at", "received_at")
    list_filter = ("type",)
    search_fields = ("name", "message_id")
    raw_id_fields = ("contact",)
    readonly_fields = ("message_id", "received_at")
    show_full_result_count = False
