from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audience.inbox import inbox_retry
from audience.models import Contact, Event, Identity, InboxBatch
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


class InboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("waiting", "Waiting"), ("failed", "Failed")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[InboxBatch]
    ) -> QuerySet[InboxBatch]:
        if self.value() == "waiting":
            return queryset.filter(failed_at=None)
        if self.value() == "failed":
            return queryset.exclude(failed_at=None)
        return queryset


@admin.register(InboxBatch)
class InboxBatchAdmin(TenantScopedAdmin):
    """Accepted /v1/* requests the ingest worker has not recorded yet, and those it could not
    record (failed, with the reason): an operator fixes the cause and retries them."""

    list_display = ("id", "tenant", "source", "size", "received_at", "attempts", "failed_at")
    list_filter = (InboxStateFilter, "source")
    readonly_fields = (
        "tenant",
        "source",
        "received_at",
        "size",
        "attempts",
        "failed_at",
        "error",
        "messages",
    )
    actions = ["retry_selected"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from the /v1/* endpoints only

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Retry the selected failed batches", permissions=["view"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[InboxBatch]) -> None:
        count = inbox_retry(batch_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"{count} failed batch(es) queued again for the ingest worker.",
            messages.SUCCESS,
        )
