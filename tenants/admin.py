"""Operators' admin. Superusers see every tenant; staff users see only the tenants they belong to,
and everything in them (memberships, keys, people)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import User
from tenants import services
from tenants.models import ApiKey, Membership, Tenant


def visible_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    user = request.user
    if not user.is_authenticated:  # the admin site lets only staff in; this narrows the type
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


class TenantScopedAdmin(admin.ModelAdmin):
    """For models with a `tenant` FK: rows and tenant choices limited to the operator's tenants."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request).select_related("tenant")
        if request.user.is_superuser:
            return qs
        return qs.filter(tenant__in=visible_tenants(request))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = visible_tenants(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
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


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "tenant__name", "tenant__slug")
    raw_id_fields = ("user",)


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

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            services.api_key_revoke(tenant=key.tenant, api_key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple:
        if request.user.is_superuser:
            return self.readonly_fields
        # Staff must not be able to grant themselves or others operator powers.
        return (*self.readonly_fields, "is_staff", "is_superuser", "groups", "user_permissions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        # Staff see the people of their own tenants (and themselves).
        return qs.filter(memberships__tenant__in=visible_tenants(request)).distinct()
