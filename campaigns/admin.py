"""Operators' admin for campaigns, tenant-scoped like every admin here: the list with each
campaign's team, state and schedule; a campaign with its audience, variants, occurrences and its
recurring schedule's PeriodicTask (django-celery-beat's own admin row, linked); occurrences and
their frozen recipients read-only. Pausing, resuming and cancelling go through the services the
pages and the API call.

Staff see only their own tenants' campaigns (another's answer 404 by URL) and act on them only
where their role allows it in the app (marketer and above); superusers see everything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from campaigns import services
from campaigns.models import Campaign, CampaignSegment, Occurrence, Recipient, Variant
from tenants.admin import TenantScopedAdmin, operator_rank, visible_tenants
from tenants.models import ROLE_RANK, Role


def may_edit(request: HttpRequest, tenant_id: int | None) -> bool:
    """Acting on a campaign takes a marketer's role in its tenant, as in the app."""
    return operator_rank(request, tenant_id) >= ROLE_RANK[Role.MARKETER]


def when(campaign: Campaign) -> str:
    """The campaign's schedule in words, as the list shows it."""
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at:
        return f"At {campaign.send_at:%Y-%m-%d %H:%M} UTC"
    if campaign.schedule == Campaign.Schedule.LOCAL and campaign.local_date:
        at = f" {campaign.local_time:%H:%M}" if campaign.local_time else ""
        return f"{campaign.local_date:%Y-%m-%d}{at}, each recipient's local time"
    if campaign.schedule == Campaign.Schedule.RECURRING:
        cron = " ".join(
            part or "*"
            for part in (
                campaign.cron_minute,
                campaign.cron_hour,
                campaign.cron_day_of_month,
                campaign.cron_month_of_year,
                campaign.cron_day_of_week,
            )
        )
        return f"Recurring: {cron} ({campaign.tenant.timezone})"
    return campaign.get_schedule_display()


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CampaignSegmentInline(ReadOnlyInline):
    model = CampaignSegment
    verbose_name = "audience segment"
    fields = ("segment", "exclude")
    readonly_fields = fields


class VariantInline(ReadOnlyInline):
    model = Variant
    fields = ("key", "template", "weight")
    readonly_fields = fields


class OccurrenceInline(ReadOnlyInline):
    """The campaign's sendings, newest first, each linked to its page and its recipients."""

    model = Occurrence
    show_change_link = True
    fields = ("key", "state", "started_at", "finished_at", "recipient_count", "holdout_count")
    readonly_fields = fields
    ordering = ("-started_at",)


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "state", "channel", "schedule_text", "updated_at")
    list_filter = ("state", "schedule", "channel")
    list_select_related = ("tenant",)
    search_fields = ("name", "tenant__name", "tenant__slug")
    fields = (
        "tenant",
        "name",
        "state",
        "channel",
        "category",
        "schedule_text",
        "periodic_task_link",
        "throttle_per_minute",
        "send_time_optimized",
        "test_percent",
        "winner_metric",
        "winner_after_hours",
        "holdout_percent",
        "goal_event",
        "goal_window_hours",
        "paused_at",
        "open_in_app",
        "public_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields  # campaigns are edited in the app or the API; here they are acted on
    inlines = [CampaignSegmentInline, VariantInline, OccurrenceInline]
    actions = ["pause_campaigns", "resume_campaigns", "cancel_campaigns"]

    # --- columns ----------------------------------------------------------------------------

    @admin.display(description="Schedule", ordering="schedule")
    def schedule_text(self, campaign: Campaign) -> str:
        return when(campaign)

    @admin.display(description="Recurring task")
    def periodic_task_link(self, campaign: Campaign) -> str:
        task = campaign.periodic_task
        if task is None:
            return "—"
        state = "enabled" if task.enabled else "disabled"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
        return format_html('<a href="{}">{}</a> ({})', url, task.name, state)

    @admin.display(description="In the app")
    def open_in_app(self, campaign: Campaign) -> str:
        try:
            url = reverse("campaign_detail", args=[campaign.tenant.slug, campaign.public_id])
        except NoReverseMatch:  # the pages are not mounted (an API-only deployment)
            return "—"
        return format_html('<a href="{}">Open the campaign</a>', url)

    # --- permissions ------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made in the app or through the API, where the audience is checked

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cancel instead: what went out stays on the record

    def has_change_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_edit(request, obj.tenant_id))

    # --- actions ----------------------------------------------------------------------------

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Campaign], verb: str, done: str
    ) -> None:
        service = getattr(services, f"campaign_{verb}")
        changed, refused = 0, []
        for campaign in queryset:
            if not may_edit(request, campaign.tenant_id):
                refused.append(f"{campaign.name}: your role cannot change it")
                continue
            try:
                service(campaign=campaign)
            except ValidationError as exc:
                refused.append(f"{campaign.name}: {' '.join(exc.messages)}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{done} {changed} campaign(s).")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

    @admin.action(description="Pause selected campaigns", permissions=["change"])
    def pause_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "pause", "Paused")

    @admin.action(description="Resume selected campaigns", permissions=["change"])
    def resume_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "resume", "Resumed")

    @admin.action(description="Cancel selected campaigns", permissions=["change"])
    def cancel_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "cancel", "Cancelled")


# --- occurrences and recipients (read-only) ----------------------------------------------------


@admin.register(Occurrence)
class OccurrenceAdmin(TenantScopedAdmin):
    """Read-only: dispatch starts, releases and finishes occurrences."""

    list_display = (
        "campaign",
        "tenant",
        "key",
        "state",
        "started_at",
        "finished_at",
        "recipient_count",
        "holdout_count",
    )
    list_filter = ("state",)
    list_select_related = ("campaign", "tenant")
    search_fields = ("campaign__name",)
    fields = (
        "campaign",
        "key",
        "state",
        "started_at",
        "finished_at",
        "recipient_count",
        "holdout_count",
        "winner",
        "winner_due_at",
        "recipients",
        "public_id",
    )
    readonly_fields = fields

    @admin.display(description="Recipients")
    def recipients(self, occurrence: Occurrence) -> str:
        url = reverse("admin:campaigns_recipient_changelist")
        return format_html(
            '<a href="{}?occurrence={}">The {} recipients</a>',
            url,
            occurrence.pk,
            occurrence.recipient_count,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OccurrenceFilter(admin.SimpleListFilter):
    """Occurrences of the operator's tenants only (the default filter would list every
    tenant's)."""

    title = "occurrence"
    parameter_name = "occurrence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        occurrences = (
            Occurrence.objects.filter(tenant__in=visible_tenants(request))
            .select_related("campaign", "tenant")
            .order_by("-started_at")[:100]
        )
        return [(str(o.pk), f"{o.campaign.name} {o.key} ({o.tenant.slug})") for o in occurrences]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> QuerySet:
        value = self.value()
        if not (value and value.isdigit()):
            return queryset
        # With its tenant: the recipients' only index on the occurrence starts with it.
        tenant_ids = Occurrence.objects.filter(pk=int(value)).values_list("tenant_id", flat=True)
        return queryset.filter(tenant_id__in=list(tenant_ids), occurrence_id=int(value))


@admin.register(Recipient)
class RecipientAdmin(TenantScopedAdmin):
    """Read-only: who an occurrence froze, their variant (or the hold-out), when each is due
    and the outbox row once released."""

    list_display = (
        "contact",
        "occurrence_text",
        "tenant",
        "variant",
        "holdout",
        "due_at",
        "released",
        "delivery_status",
    )
    list_select_related = ("contact", "occurrence__campaign", "tenant", "variant", "delivery")
    list_filter = ("holdout", "released", OccurrenceFilter)
    search_fields = ("contact__email", "contact__user_id")
    show_full_result_count = False  # an occurrence may hold millions
    fields = (
        "occurrence",
        "contact",
        "variant",
        "holdout",
        "due_at",
        "released",
        "delivery",
    )
    readonly_fields = fields

    @admin.display(description="Occurrence")
    def occurrence_text(self, recipient: Recipient) -> str:
        occurrence = recipient.occurrence
        return f"{occurrence.campaign.name} ({occurrence.key})"

    @admin.display(description="Message")
    def delivery_status(self, recipient: Recipient) -> str:
        delivery = recipient.delivery
        if delivery is None:
            return "—"
        return f"{delivery.status} {delivery.reason}".strip()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
