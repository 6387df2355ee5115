"""Operators' admin for journeys, tenant-scoped like every admin here: onboarding series and
birthday flows are journeys, made from the ready-made ones, paused and resumed, their steps'
delays and templates edited on the draft version — all through the services the editor and the
API call, so the same flow opens in the editor ("Open in editor") exactly as changed here.

Staff see only their own tenants' journeys (another's answer 404 by URL) and change them only
where their role allows it in the app (marketer and above); superusers see everything.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from journeys import node_kinds, presets, selectors, services
from journeys.models import Enrollment, Journey, JourneyVersion, Node, Step
from journeys.services import JourneyError
from messaging import selectors as messaging_selectors
from tenants.admin import TenantScopedAdmin, operator_rank, visible_tenants
from tenants.models import ROLE_RANK, Role, Tenant

OPEN_STATES = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)
DELAY_UNITS = (("minutes", "minutes"), ("hours", "hours"), ("days", "days"))
TEMPLATE_KINDS = {"action_email": "email", "action_push": "push"}  # a message step's channel
CHANNELS = (("email", "Email"), ("push", "Web push"))


def may_edit(request: HttpRequest, tenant_id: int | None) -> bool:
    """Changing a journey takes a marketer's role in its tenant, as in the app."""
    return operator_rank(request, tenant_id) >= ROLE_RANK[Role.MARKETER]


def editor_link(journey: Journey) -> str:
    url = reverse("journey_editor", args=[journey.tenant.slug, journey.public_id])
    return format_html('<a href="{}">Open in editor</a>', url)


class PresetFilter(admin.SimpleListFilter):
    title = "ready-made journey"
    parameter_name = "preset"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("none", "None (built by hand)")] + [
            (key, preset.name) for key, preset in presets.PRESETS.items()
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Journey]) -> QuerySet[Journey]:
        value = self.value()
        if value == "none":
            return queryset.filter(preset="")
        return queryset.filter(preset=value) if value else queryset


class JourneyAdminForm(forms.ModelForm):
    class Meta:
        model = Journey
        fields = ["name", "description"]


class VersionInline(admin.TabularInline):
    """The journey's versions, newest first; the draft's steps are edited on its own page."""

    model = JourneyVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("number", "state", "published_at", "created_at")
    readonly_fields = fields
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Journey)
class JourneyAdmin(TenantScopedAdmin):
    form = JourneyAdminForm
    list_display = (
        "name",
        "tenant",
        "status",
        "preset_name",
        "live_version",
        "people_in_it",
        "updated_at",
    )
    list_filter = ("status", PresetFilter)
    search_fields = ("name", "description", "tenant__name", "tenant__slug")
    fields = (
        "tenant",
        "name",
        "description",
        "status",
        "preset_name",
        "live_version",
        "people_in_it",
        "steps",
        "open_in_editor",
        "public_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "tenant",
        "status",
        "preset_name",
        "live_version",
        "people_in_it",
        "steps",
        "open_in_editor",
        "public_id",
        "created_at",
        "updated_at",
    )
    inlines = [VersionInline]
    actions = ["pause_journeys", "resume_journeys", "start_drafts"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Journey]:
        live = JourneyVersion.objects.filter(
            journey=OuterRef("pk"), state=JourneyVersion.State.PUBLISHED
        ).values("number")[:1]
        people = (
            Enrollment.objects.filter(journey=OuterRef("pk"), state__in=OPEN_STATES)
            .order_by()
            .values("journey")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_number=Subquery(live),
                open_enrollments=Coalesce(Subquery(people, output_field=IntegerField()), Value(0)),
            )
        )

    # --- columns ----------------------------------------------------------------------------

    @admin.display(description="Ready-made journey", ordering="preset")
    def preset_name(self, journey: Journey) -> str:
        preset = presets.PRESETS.get(journey.preset)
        return preset.name if preset else journey.preset or "—"

    @admin.display(description="Live version", ordering="live_number")
    def live_version(self, journey: Journey) -> str:
        number = getattr(journey, "live_number", None)
        return f"v{number}" if number else "—"

    @admin.display(description="People in it", ordering="open_enrollments")
    def people_in_it(self, journey: Journey) -> str:
        count = getattr(journey, "open_enrollments", 0)
        url = reverse("admin:journeys_enrollment_changelist")
        return format_html('<a href="{}?journey={}&amp;open=1">{}</a>', url, journey.pk, count)

    @admin.display(description="Steps")
    def steps(self, journey: Journey) -> str:
        draft = selectors.journey_draft(tenant=journey.tenant, journey=journey)
        if draft is None:
            return "No draft: the action “Start a draft” makes one (or edit in the editor)."
        url = reverse("admin:journeys_journeyversion_change", args=[draft.pk])
        return format_html('<a href="{}">Edit the steps of the draft (v{})</a>', url, draft.number)

    @admin.display(description="Editor")
    def open_in_editor(self, journey: Journey) -> str:
        return editor_link(journey)

    # --- permissions and saving -------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Journey | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_edit(request, obj.tenant_id))

    def has_delete_permission(self, request: HttpRequest, obj: Journey | None = None) -> bool:
        # Never-published drafts go through the API or the editor; the rest are archived.
        return False

    def save_model(self, request: HttpRequest, obj: Journey, form: Any, change: bool) -> None:
        # Name and description only (the form has no other field): the journey's identity.
        services.journey_update(
            tenant=obj.tenant, journey=obj, name=obj.name, description=obj.description
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Adding a journey here is making one from a ready-made journey."""
        return HttpResponseRedirect(reverse("admin:journeys_journey_from_preset"))

    # --- actions ----------------------------------------------------------------------------

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Journey], verb: str, done: str
    ) -> None:
        service = getattr(services, f"journey_{verb}")
        changed, refused = 0, []
        for journey in queryset:
            if not may_edit(request, journey.tenant_id):
                refused.append(f"{journey.name}: your role cannot change it")
                continue
            try:
                service(tenant=journey.tenant, journey=journey, actor=request.user)
            except JourneyError as exc:
                refused.append(f"{journey.name}: {exc.message}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{done} {changed} journey(s).")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

    @admin.action(description="Pause selected journeys", permissions=["change"])
    def pause_journeys(self, request: HttpRequest, queryset: QuerySet[Journey]) -> None:
        self._transition(request, queryset, "pause", "Paused")

    @admin.action(description="Resume selected journeys", permissions=["change"])
    def resume_journeys(self, request: HttpRequest, queryset: QuerySet[Journey]) -> None:
        self._transition(request, queryset, "resume", "Resumed")

    @admin.action(description="Start a draft to edit the steps of", permissions=["change"])
    def start_drafts(self, request: HttpRequest, queryset: QuerySet[Journey]) -> None:
        started = 0
        for journey in queryset:
            if may_edit(request, journey.tenant_id) and journey.status != Journey.Status.ARCHIVED:
                services.journey_draft_get_or_create(tenant=journey.tenant, journey=journey)
                started += 1
        self.message_user(request, f"{started} journey(s) have a draft to edit.")

    # --- create from a ready-made journey ---------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "from-preset/",
                self.admin_site.admin_view(self.from_preset_view),
                name="journeys_journey_from_preset",
            )
        ]
        return extra + super().get_urls()

    def from_preset_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request) or not super().has_add_permission(request):
            raise PermissionDenied
        form = PresetForm(request.POST or None, request=request)
        if request.method == "POST" and form.is_valid():
            tenant, key = form.cleaned_data["tenant"], form.cleaned_data["preset"]
            journey = presets.preset_create(tenant=tenant, key=key, actor=request.user)
            self.message_user(
                request,
                f"Created “{journey.name}” from the ready-made journey: a draft; "
                "adjust its steps, then publish it in the editor.",
            )
            return HttpResponseRedirect(reverse("admin:journeys_journey_change", args=[journey.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Create a journey from a ready-made one",
            "form": form,
            "presets": list(presets.PRESETS.values()),
        }
        return render(request, "admin/journeys/journey/from_preset.html", context)


class PresetForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    preset = forms.ChoiceField(label="Ready-made journey", choices=(), widget=forms.RadioSelect)

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        tenants = visible_tenants(request)
        user = request.user
        if user.is_authenticated and not user.is_superuser:
            # Only where the operator may make journeys (marketer and above).
            editors = (Role.MARKETER, Role.ADMIN, Role.OWNER)
            tenants = tenants.filter(
                memberships__user=user, memberships__role__in=editors
            ).distinct()
        tenant_field = self.fields["tenant"]
        assert isinstance(tenant_field, forms.ModelChoiceField)
        tenant_field.queryset = tenants
        preset_field = self.fields["preset"]
        assert isinstance(preset_field, forms.ChoiceField)
        preset_field.choices = [
            (key, f"{preset.name} — {preset.description}")
            for key, preset in presets.PRESETS.items()
        ]


# --- the draft's steps -----------------------------------------------------------------------


class NodeInlineForm(forms.ModelForm):
    """One step of the draft. A delay's amount and unit, and a message's channel and template,
    have their own controls; the step's kind checks the result (its messages show on the
    field at fault) and node_update saves it, as the editor does."""

    delay_amount = forms.IntegerField(label="Delay", required=False)
    delay_unit = forms.ChoiceField(label="Unit", choices=DELAY_UNITS, required=False)
    channel = forms.ChoiceField(label="Channel", choices=CHANNELS, required=False)
    template = forms.ChoiceField(label="Template", required=False, choices=())

    # Set per request by NodeInline.get_formset: the version's tenant's templates.
    template_channels: dict[str, str] = {}  # public id → channel
    template_choices: list[tuple[str, str]] = []

    class Meta:
        model = Node
        fields = ["label"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        node: Node = self.instance
        settings = node.settings or {}
        unused: list[str] = []
        if node.kind == "wait_delay":
            self.fields["delay_amount"].initial = settings.get("amount")
            self.fields["delay_unit"].initial = settings.get("unit")
        else:
            unused += ["delay_amount", "delay_unit"]
        if node.kind in TEMPLATE_KINDS:
            self.fields["channel"].initial = TEMPLATE_KINDS[node.kind]
            template = self.fields["template"]
            assert isinstance(template, forms.ChoiceField)
            template.choices = [("", "—"), *self.template_choices]
            template.initial = settings.get("template", "")
        else:
            unused += ["channel", "template"]
        for name in unused:  # not this kind's: shown as nothing, never read
            self.fields[name].disabled = True
            self.fields[name].widget = forms.HiddenInput()

    def new_kind(self) -> str:
        node: Node = self.instance
        if node.kind in TEMPLATE_KINDS:
            return f"action_{self.cleaned_data.get('channel') or TEMPLATE_KINDS[node.kind]}"
        return node.kind

    def new_settings(self) -> dict[str, Any]:
        node: Node = self.instance
        settings = dict(node.settings or {})
        if node.kind == "wait_delay":
            settings["amount"] = self.cleaned_data.get("delay_amount")
            settings["unit"] = self.cleaned_data.get("delay_unit") or ""
        elif node.kind in TEMPLATE_KINDS:
            settings["template"] = self.cleaned_data.get("template") or ""
        return settings

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        node: Node = self.instance
        if not self.has_changed() or self.errors:
            return cleaned
        kind, settings = self.new_kind(), self.new_settings()
        template = settings.get("template", "")
        if node.kind in TEMPLATE_KINDS and template:
            channel = self.template_channels.get(template)
            if channel != cleaned.get("channel"):
                wanted = {"email": "an email", "push": "a web push"}[
                    cleaned.get("channel") or "email"
                ]
                self.add_error("template", f"Choose {wanted} template for {wanted} step.")
                return cleaned
        try:
            node_kinds.get(kind).validate(settings)
        except node_kinds.NodeSettingsError as exc:
            fields = {"amount": "delay_amount", "unit": "delay_unit", "template": "template"}
            for key, message in exc.errors.items():
                self.add_error(fields.get(key), message)
        return cleaned


class NodeFormSet(BaseInlineFormSet):
    def save_new(self, form: forms.ModelForm, commit: bool = True) -> Any:
        raise PermissionDenied("Steps are added in the editor.")


class NodeInline(admin.TabularInline):
    model = Node
    form = NodeInlineForm
    formset = NodeFormSet
    extra = 0
    can_delete = False
    fields = (
        "key",
        "kind_label",
        "label",
        "summary",
        "delay_amount",
        "delay_unit",
        "channel",
        "template",
    )
    readonly_fields = ("key", "kind_label", "summary")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            templates = list(messaging_selectors.template_list(tenant=obj.tenant))
            channels = dict(CHANNELS)
            formset.form = type(
                "NodeInlineForm",
                (formset.form,),
                {
                    "template_channels": {str(t.public_id): t.channel for t in templates},
                    "template_choices": [
                        (str(t.public_id), f"{t.name} ({channels.get(t.channel, t.channel)})")
                        for t in templates
                    ],
                },
            )
        return formset

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.state != JourneyVersion.State.DRAFT:
            return ("key", "kind_label", "label", "summary")  # read-only: no form controls
        return self.fields

    @admin.display(description="Kind")
    def kind_label(self, node: Node) -> str:
        return node_kinds.get(node.kind).label if node_kinds.is_registered(node.kind) else node.kind

    @admin.display(description="Does")
    def summary(self, node: Node) -> str:
        if not node_kinds.is_registered(node.kind):
            return ""
        return node_kinds.get(node.kind).describe(node.settings or {})

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.state == JourneyVersion.State.DRAFT)


@admin.register(JourneyVersion)
class JourneyVersionAdmin(TenantScopedAdmin):
    """A version and its steps: the draft's delays and templates are editable here; the
    published and archived ones are read-only (publish a change from the editor or the API)."""

    list_display = ("__str__", "tenant", "state", "published_at", "created_at")
    list_filter = ("state",)
    list_select_related = ("journey", "tenant")
    search_fields = ("journey__name",)
    fields = (
        "journey_link",
        "number",
        "state",
        "reentry",
        "reentry_days",
        "max_enrollments",
        "exit_on_goal",
        "exit_events",
        "published_at",
        "open_in_editor",
    )
    readonly_fields = fields
    inlines = [NodeInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[JourneyVersion]:
        return super().get_queryset(request).select_related("journey", "journey__tenant")

    @admin.display(description="Journey")
    def journey_link(self, version: JourneyVersion) -> str:
        url = reverse("admin:journeys_journey_change", args=[version.journey_id])
        return format_html('<a href="{}">{}</a>', url, version.journey.name)

    @admin.display(description="Editor")
    def open_in_editor(self, version: JourneyVersion) -> str:
        return editor_link(version.journey)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_edit(request, obj.tenant_id))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # the version's own fields are read-only here; its steps are saved below

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        version: JourneyVersion = form.instance
        # What the admin's history reads from a formset it saved itself.
        formset.new_objects, formset.deleted_objects, formset.changed_objects = [], [], []
        for node_form in formset.forms:
            if not node_form.has_changed():
                continue
            node: Node = node_form.instance
            formset.changed_objects.append((node, node_form.changed_data))
            services.node_update(
                tenant=version.tenant,
                journey=version.journey,
                key=node.key,
                label=node_form.cleaned_data.get("label", node.label),
                kind=node_form.new_kind(),
                settings=node_form.new_settings(),
            )


# --- enrollments (read-only) -----------------------------------------------------------------


class JourneyFilter(admin.SimpleListFilter):
    """Journeys of the operator's tenants only (the default filter would list every tenant's)."""

    title = "journey"
    parameter_name = "journey"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        journeys = Journey.objects.filter(tenant__in=visible_tenants(request)).select_related(
            "tenant"
        )
        return [(str(j.pk), f"{j.name} ({j.tenant.slug})") for j in journeys]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Enrollment]) -> QuerySet:
        value = self.value()
        return queryset.filter(journey_id=int(value)) if value and value.isdigit() else queryset


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "In the journey now (active or waiting)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Enrollment]) -> QuerySet:
        return queryset.filter(state__in=OPEN_STATES) if self.value() == "1" else queryset


class StepInline(admin.TabularInline):
    """The enrollment's log, oldest first."""

    model = Step
    extra = 0
    can_delete = False
    fields = ("created_at", "node_key", "result", "port", "version", "detail_text")
    readonly_fields = fields
    ordering = ("created_at", "pk")

    @admin.display(description="Detail")
    def detail_text(self, step: Step) -> str:
        return json.dumps(step.detail, ensure_ascii=False) if step.detail else ""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(TenantScopedAdmin):
    """Read-only: the engine moves enrollments; the log says what happened."""

    list_display = ("contact", "journey", "tenant", "state", "node_key", "entered_at", "failure")
    list_select_related = ("contact", "journey", "tenant")
    list_filter = ("state", OpenFilter, JourneyFilter)
    search_fields = ("contact__email", "contact__user_id")
    show_full_result_count = False  # a journey may hold millions
    fields = (
        "journey",
        "contact",
        "state",
        "node_key",
        "version",
        "entered_at",
        "arrived_at",
        "due_at",
        "wait_event",
        "failure",
        "attempts",
        "converted_at",
        "revenue",
        "finished_at",
    )
    readonly_fields = fields
    inlines = [StepInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
