from __future__ import annotations

from django.urls import path

from tenants import api

urlpatterns = [
    path("tenant/", api.TenantDetailAPI.as_view(), name="api_tenant_detail"),
]
