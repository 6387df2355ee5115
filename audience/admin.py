"""Operators' admin for audience, tenant-scoped like every admin here. Contacts are deleted as
the app erases them (audience.services.contact_erase), and events come from ingestion only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from audience.inbox import inbox_retry
from audience.models import Contact, Event, Identity, InboxBatch, Order, StageRules
from audience.services import contact_erase
from tenants.admin import TenantScopedAdmin, operator_rank
from tenants.models import ROLE_RANK, Role


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
        "lifecycle_stage",  # computed from behaviour (audience/stages.py)
        "last_seen_at",
        "cart",
        "wishlist",
        "recently_viewed",
    )
    inlines = [IdentityInline]
    show_full_result_count = False  # counting millions of contacts on every page is slow

    # Deleting is erasing (GDPR), as the app's "Erase contact" and the API's DELETE do: a plain
    # delete would leave the dedupe keys of the contact's events behind (a key has no contact
    # column, so no cascade reaches it), and their message ids are personal data too.
    def has_delete_permission(self, request: HttpRequest, obj: Contact | None = None) -> bool:
        """Erasing needs the admin role in the contact's team, as in the app."""
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or _may_erase(request, obj.tenant_id))

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """What the delete confirmation shows: each contact with how much of them goes (not a
        line per event, which may be millions), and the teams where the operator may not erase."""
        contacts = list(objs)
        events = _counts(Event, contacts)
        orders = _counts(Order, contacts)
        listed = [
            f"{contact} ({contact.tenant}): erased with {events.get(contact.pk, 0)} event(s),"
            f" {orders.get(contact.pk, 0)} order(s), their ids and messages"
            for contact in contacts
        ]
        count = {
            str(Contact._meta.verbose_name_plural): len(contacts),
            str(Event._meta.verbose_name_plural): sum(events.values()),
            str(Order._meta.verbose_name_plural): sum(orders.values()),
        }
        refused = {
            f"contacts of {contact.tenant} (erasing needs the admin role there)"
            for contact in contacts
            if not _may_erase(request, contact.tenant_id)
        }
        return listed, count, refused, []

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        with transaction.atomic():
            contact_erase(tenant=obj.tenant, contact=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        for contact in queryset:
            if not _may_erase(request, contact.tenant_id):  # the confirmation refused them
                continue
            with transaction.atomic():  # each erase whole, or not at all
                contact_erase(tenant=contact.tenant, contact=contact)


def _may_erase(request: HttpRequest, tenant_id: int) -> bool:
    return operator_rank(request, tenant_id) >= ROLE_RANK[Role.ADMIN]


def _counts(model: type[Event] | type[Order], contacts: list[Contact]) -> dict[int, int]:
    """The contacts' rows of `model`, per contact id (through its (tenant, contact, …) index)."""
    rows = model.objects.filter(
        tenant_id__in={c.tenant_id for c in contacts}, contact_id__in=[c.pk for c in contacts]
    )
    per_contact = rows.order_by().values("contact_id").annotate(n=Count("*"))
    return {row["contact_id"]: row["n"] for row in per_contact}


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "contact", "type", "occurred_at", "received_at")
    list_filter = ("type",)
    search_fields = ("name", "message_id")
    raw_id_fields = ("contact",)
    readonly_fields = ("message_id", "received_at")
    show_full_result_count = False

    # Events come from ingestion only, which also writes their dedupe key and, for an order,
    # its row in the order ledger (what segments read for "Order Completed"): one added or
    # renamed here would have neither.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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


@admin.register(StageRules)
class StageRulesAdmin(TenantScopedAdmin):
    """A team's lifecycle stage rules, to look at: they are changed in the team's Settings →
    Lifecycle stages, where saving also re-evaluates the team's contacts."""

    list_display = (
        "tenant",
        "onboarding_days",
        "active_days",
        "drifting_days",
        "advocacy_days",
        "promoter_min_score",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StageRules | None = None) -> bool:
        return False
