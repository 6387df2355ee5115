"""Operators' admin for segments, tenant-scoped like every admin here. Rules are edited as JSON
but checked and saved by the same services as the app, so membership follows every change."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from segments import rules as rule_tree
from segments import selectors, services
from segments.models import Segment, SegmentMembership
from segments.services import SegmentError
from tenants.admin import TenantScopedAdmin, visible_tenants


class IndentedJSONField(forms.JSONField):
    """A rule tree laid out one key per line, for reading and editing by hand."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # what the operator typed, shown back with the error
        return json.dumps(value, ensure_ascii=False, indent=2)


class SegmentAdminForm(forms.ModelForm):
    rules = IndentedJSONField(widget=forms.Textarea(attrs={"rows": 24, "cols": 80}))

    class Meta:
        model = Segment
        fields = ["tenant", "name", "description", "rules"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        # The tenant is chosen when adding, and fixed afterwards (a read-only field then).
        tenant = cleaned.get("tenant") if "tenant" in self.fields else self.instance.tenant
        if tenant is None:
            return cleaned
        if "rules" in cleaned:
            try:
                cleaned["rules"] = services.segment_rules_check(
                    tenant=tenant,
                    rules=cleaned["rules"],
                    segment=self.instance if self.instance.pk else None,
                )
            except SegmentError as exc:
                self.add_error(exc.field, exc.message)
        name = cleaned.get("name")
        # When adding, the form's own (tenant, name) constraint check covers this.
        if name and "tenant" not in self.fields:
            taken = Segment.objects.filter(tenant=tenant, name=name).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("name", "A segment with this name exists already.")
        return cleaned


@admin.register(Segment)
class SegmentAdmin(TenantScopedAdmin):
    form = SegmentAdminForm
    list_display = ("name", "tenant", "member_count", "time_relative", "refreshed_at")
    list_filter = ("time_relative",)
    search_fields = ("name", "description")
    editable_fields = ("tenant", "name", "description", "rules")
    readonly_fields = (
        "public_id",
        "summary",
        "member_count",
        "members",
        "time_relative",
        "refreshed_at",
        "created_at",
        "updated_at",
    )
    actions = ["refresh_membership"]

    def get_fields(self, request: HttpRequest, obj: Segment | None = None) -> tuple[str, ...]:
        return (
            self.editable_fields if obj is None else (*self.editable_fields, *self.readonly_fields)
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None) -> tuple:
        return () if obj is None else ("tenant", *self.readonly_fields)

    @admin.display(description="Summary")
    def summary(self, segment: Segment) -> str:
        return rule_tree.describe(segment.rules, selectors.segment_names(tenant=segment.tenant))

    @admin.display(description="Members")
    def members(self, segment: Segment) -> str:
        url = reverse("admin:segments_segmentmembership_changelist")
        link = '<a href="{}?segment={}">List the members ({})</a>'
        return format_html(link, url, segment.pk, segment.member_count)

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        fields = {"name": obj.name, "rules": obj.rules, "description": obj.description}
        if change:
            saved = services.segment_update(tenant=obj.tenant, segment=obj, **fields)
        else:
            saved = services.segment_create(tenant=obj.tenant, **fields)
        # The admin goes on with `obj` (the log entry, the redirect): make it the saved row.
        for field in Segment._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """What the delete confirmation shows: counts instead of every membership row, and
        the segments that use these ones as protected (deleting is refused while they do)."""
        segments = list(objs)
        pks = {s.pk for s in segments}
        names = {str(s.public_id): s.name for s in segments}
        protected = []
        for tenant_id in {s.tenant_id for s in segments}:
            for other in Segment.objects.filter(tenant_id=tenant_id).exclude(pk__in=pks):
                used = sorted(names[ref] for ref in rule_tree.references(other.rules) & set(names))
                if used:
                    protected.append(f"{other.name} (uses {', '.join(used)})")
        count = {
            str(Segment._meta.verbose_name_plural): len(segments),
            str(SegmentMembership._meta.verbose_name_plural): SegmentMembership.objects.filter(
                segment__in=pks
            ).count(),
        }
        perms_needed = set() if self.has_delete_permission(request) else {"segment"}
        return [s.name for s in segments], count, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        services.segment_delete(tenant=obj.tenant, segment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        # Segments that use others go first, so each deletion finds nobody using it.
        for segment in reversed(services.segments_in_dependency_order(queryset)):
            services.segment_delete(tenant=segment.tenant, segment=segment)

    @admin.action(description="Refresh membership now", permissions=["change"])
    def refresh_membership(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        entered = exited = 0
        segments = services.segments_in_dependency_order(queryset)  # referenced segments first
        for segment in segments:
            change = services.segment_membership_refresh(segment=segment)
            entered, exited = entered + len(change.entered), exited + len(change.exited)
        self.message_user(
            request,
            f"Refreshed {len(segments)} segment(s): {entered} contact(s) entered, {exited} left.",
        )


class SegmentFilter(admin.SimpleListFilter):
    """Segments of the operator's tenants only (the default filter would list every tenant's)."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        segments = Segment.objects.filter(tenant__in=visible_tenants(request)).select_related(
            "tenant"
        )
        return [(str(s.pk), f"{s.name} ({s.tenant.slug})") for s in segments]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SegmentMembership]) -> QuerySet:
        value = self.value()
        return queryset.filter(segment_id=int(value)) if value and value.isdigit() else queryset


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(TenantScopedAdmin):
    """Read-only: membership follows the rules, it is never edited by hand."""

    list_display = ("contact", "segment", "tenant", "entered_at")
    list_select_related = ("contact", "segment", "tenant")
    list_filter = (SegmentFilter,)
    show_full_result_count = False  # a segment may have millions of members

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
