"""Tenant UI, mounted under /t/. Every pattern below <tenant_slug>/ is resolved by
TenantMiddleware; later apps mount their areas here too (contacts, segments, journeys…)."""

from __future__ import annotations

from django.urls import include, path

from tenants import views

tenant_patterns = [
    # "" (the team's home page, `dashboard`) is analytics's: analytics/urls_dashboard.py.
    path("settings/", views.tenant_settings, name="tenant_settings"),
    path("settings/members/", views.member_list, name="member_list"),
    path("settings/members/add/", views.member_add, name="member_add"),
    path("settings/members/<uuid:member_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<uuid:member_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "settings/members/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("settings/api-keys/", views.api_key_list, name="api_key_list"),
    path("settings/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("settings/api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]

urlpatterns = [
    path("new/", views.tenant_new, name="tenant_new"),
    path("<slug:tenant_slug>/", include(tenant_patterns)),
]
