"""Mounts every app: UI under /t/<tenant-slug>/, REST under /api/v1/, admin under /admin/."""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ops import views as ops_views
from tenants import views as tenant_views

admin.site.site_header = "Wayfarer operations"
admin.site.site_title = "Wayfarer admin"

# Swagger UI's page and Swagger UI itself write inline <style>, which this read-only page may.
API_DOCS_CSP: dict[str, Collection[str] | str] = {
    **settings.SECURE_CSP,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
}

urlpatterns = [
    path("", tenant_views.home, name="home"),
    path("healthz", ops_views.healthz, name="healthz"),
    path("signup/", tenant_views.signup, name="signup"),
    path("signup/done/", tenant_views.signup_done, name="signup_done"),
    # An invitation's link (tenants/services.py, member_invite): no sign-in needed.
    path(
        "invite/<slug:team>/<str:secret>/", tenant_views.invitation_accept, name="invitation_accept"
    ),
    path("accounts/", include("accounts.urls")),
    # tenants.urls first: its "t/new/" must not be read as the dashboard of a team called "new".
    path("t/", include("tenants.urls")),
    path("t/<slug:tenant_slug>/", include("audience.urls")),
    path("t/<slug:tenant_slug>/", include("segments.urls")),
    path("t/<slug:tenant_slug>/", include("messaging.urls")),
    path("t/<slug:tenant_slug>/", include("journeys.urls")),
    path("t/<slug:tenant_slug>/", include("campaigns.urls")),
    path("t/<slug:tenant_slug>/", include("analytics.urls")),
    path("t/<slug:tenant_slug>/settings/webhooks/", include("webhooks.urls")),
    path("t/<slug:tenant_slug>/personalisation/", include("personalisation.urls")),
    path("api/v1/", include("tenants.api_urls")),
    path("api/v1/", include("audience.api_urls")),
    path("api/v1/", include("segments.api_urls")),
    path("api/v1/", include("messaging.api_urls")),
    path("api/v1/", include("journeys.api_urls")),
    path("api/v1/", include("campaigns.api_urls")),
    path("api/v1/", include("webhooks.api_urls")),
    path("api/v1/", include("analytics.api_urls")),
    path("api/v1/", include("personalisation.api_urls")),
    path("v1/", include("audience.urls_ingest")),
    path("v1/", include("messaging.urls_ingest")),
    path("v1/", include("personalisation.urls_ingest")),
    # Links inside emails and pushes (signed, no login), and ESP webhooks (bounces, complaints).
    path("m/", include("messaging.public_urls")),
    path("s/", include("personalisation.surveys.public_urls")),
    path("anymail/", include("messaging.webhook_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline
    # script.
    path(
        "api/v1/docs/",
        csp_override(API_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api_schema")),
        name="api_docs",
    ),
    path("admin/", admin.site.urls),
]

handler400 = "ops.views.error_400"
handler403 = "ops.views.error_403"
handler404 = "ops.views.error_404"
handler500 = "ops.views.error_500"
