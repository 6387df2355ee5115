"""Operators' admin. Superusers see and manage everything. Staff users see only the tenants they
belong to and what is in them (another tenant's rows are not listed and answer 404 by URL), and
within a tenant they act as their role there allows, as in the app: members and keys need the
admin role, nobody changes their own membership or gives or touches a role above their own, and
people (accounts, passwords) are managed by superusers alone (staff may look, read-only, at the
people of their tenants)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import User
from tenants import services
from tenants.models import ROLE_RANK, ApiKey, Invitation, Membership, Role, Tenant


def visible_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    user = request.user
    if not user.is_authenticated:  # the admin site lets only staff in; this narrows the type
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


def operator_rank(request: HttpRequest, tenant_id: int | None) -> int:
    """The operator's rank in a tenant (ROLE_RANK): above every role for superusers, -1 where
    the operator is not a member."""
    user = request.user
    if not user.is_authenticated:
        return -1
    if user.is_superuser:
        return ROLE_RANK[Role.OWNER] + 1
    ranks: dict[int, int] | None = getattr(request, "_operator_ranks", None)
    if ranks is None:  # once per request
        ranks = {
            m.tenant_id: ROLE_RANK[Role(m.role)]
            for m in Membership.objects.filter(user_id=user.pk).only("tenant_id", "role")
        }
        request._operator_ranks = ranks  # type: ignore[attr-defined]
    return ranks.get(tenant_id, -1) if tenant_id is not None else -1


def managed_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    """The tenants whose members and keys the operator manages: where they are an admin."""
    user = request.user
    if not user.is_authenticated:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(
        memberships__user=user, memberships__role__in=[Role.ADMIN, Role.OWNER]
    )


class OperatorScopedAdmin(admin.ModelAdmin):
    """An object outside the operator's queryset answers 404, as a missing one does (Django's
    admin would redirect to the index with a message)."""

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj


class TenantScopedAdmin(OperatorScopedAdmin):
    """For models with a `tenant` FK: rows and tenant choices limited to the operator's tenants."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request).select_related("tenant")
        if request.user.is_superuser:
            return qs
        return qs.filter(tenant__in=visible_tenants(request))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs.setdefault("queryset", visible_tenants(request))  # subclasses may narrow it
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    """Editable by superusers; staff manage members on the membership pages, where each change
    is checked against their own role."""

    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Tenant)
class TenantAdmin(OperatorScopedAdmin):
    list_display = ("name", "slug", "timezone", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id", "created_at")
    fields = ("name", "slug", "timezone", "public_id", "created_at")
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return visible_tenants(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Superusers only, through the service: creating a tenant makes the other apps' parts of
        # it (tenants.signals.tenant_created), such as messaging's VAPID keys.
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or operator_rank(request, obj.pk) >= ROLE_RANK[Role.ADMIN])

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.tenant_create(
            name=obj.name,
            slug=obj.slug,
            timezone_name=obj.timezone,
        )
        obj.pk, obj.public_id = created.pk, created.public_id
        obj.created_at = created.created_at


class MembershipAdminForm(forms.ModelForm):
    operator_request: HttpRequest  # set by MembershipAdmin.get_form

    class Meta:
        model = Membership
        fields = ["tenant", "user", "role"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        request = self.operator_request
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        role = cleaned.get("role")
        if tenant is None or role is None:
            return cleaned
        rank = operator_rank(request, tenant.pk)
        if ROLE_RANK[Role(role)] > rank:
            self.add_error("role", f"You cannot give a role above your own in {tenant}.")
        if not request.user.is_superuser and cleaned.get("user") == request.user:
            self.add_error("user", "Your own membership is for another operator to change.")
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipAdminForm
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "tenant__name", "tenant__slug")
    raw_id_fields = ("user",)

    def get_form(
        self,
        request: HttpRequest,
        obj: Membership | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"operator_request": request})

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple:
        # A membership stays with its tenant and person: moving it would hand one person's
        # place (and role) to another.
        return ("tenant", "user") if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            if db_field.name == "tenant":
                kwargs["queryset"] = managed_tenants(request)
            elif db_field.name == "user":
                # People already in the operator's tenants: bringing in anyone else would put
                # them (and their other teams) within the operator's reach. Inviting is the
                # app's Members page, by email.
                kwargs["queryset"] = User.objects.filter(
                    memberships__tenant__in=visible_tenants(request)
                ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _may_manage(self, request: HttpRequest, obj: Membership) -> bool:
        if request.user.is_superuser:
            return True
        rank = operator_rank(request, obj.tenant_id)
        return (
            obj.user_id != request.user.pk
            and rank >= ROLE_RANK[Role.ADMIN]
            and ROLE_RANK[Role(obj.role)] <= rank
        )

    def has_change_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self._may_manage(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or self._may_manage(request, obj))


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "kind", "masked", "created_at", "last_used_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("name", "prefix", "tenant__name")
    fields = ("tenant", "name", "kind")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("tenant", "name", "kind")
        return ("tenant", "name", "kind", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple:
        return ("tenant", "kind", *self.readonly_fields) if obj else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":  # keys are made by a team's admins, as in the app
            kwargs["queryset"] = managed_tenants(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        rank = operator_rank(request, obj.tenant_id) if obj else ROLE_RANK[Role.ADMIN]
        return allowed and rank >= ROLE_RANK[Role.ADMIN]

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        rank = operator_rank(request, obj.tenant_id) if obj else ROLE_RANK[Role.ADMIN]
        return allowed and rank >= ROLE_RANK[Role.ADMIN]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = services.api_key_create(
            tenant=obj.tenant,
            kind=obj.kind,
            name=obj.name,
            actor=request.user if request.user.is_authenticated else None,
        )
        obj.pk = key.pk
        obj.public_id, obj.prefix, obj.key_hash = key.public_id, key.prefix, key.key_hash
        messages.warning(request, f"Copy the new key now, it is shown only once: {raw}")

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = [key for key in queryset if self.has_change_permission(request, key)]
        for key in keys:
            services.api_key_revoke(tenant=key.tenant, api_key=key)
        self.message_user(request, f"Revoked {len(keys)} key(s).")


@admin.register(User)
class UserAdmin(OperatorScopedAdmin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("public_id", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password", "public_id")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    # People are managed by superusers alone: whoever can set a password or an address can
    # sign in as that person, in every team they belong to.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return request.user.is_superuser

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        # Staff see the people of their own tenants (and themselves).
        return qs.filter(memberships__tenant__in=visible_tenants(request)).distinct()


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invitations are made and withdrawn in the team's Settings → Members (their link is emailed
    once and never stored); operators see them here."""

    list_display = (
        "email",
        "tenant",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("role",)
    search_fields = ("email", "tenant__name")
    readonly_fields = (
        "tenant",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Invitation | None = None) -> bool:
        return False
