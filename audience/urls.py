"""Audience UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves it)."""

from __future__ import annotations

from django.urls import path

from audience import demo_shop, import_views, product_views, stage_views, views

urlpatterns = [
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/export.csv", import_views.contact_export, name="contact_export"),
    path("contacts/import/", import_views.contact_import_start, name="contact_import_start"),
    path(
        "contacts/import/<uuid:import_id>/",
        import_views.contact_import_detail,
        name="contact_import_detail",
    ),
    path(
        "contacts/import/<uuid:import_id>/errors.csv",
        import_views.contact_import_errors,
        name="contact_import_errors",
    ),
    path("contacts/<uuid:contact_id>/", views.contact_detail, name="contact_detail"),
    path("contacts/<uuid:contact_id>/timeline/", views.contact_timeline, name="contact_timeline"),
    path("contacts/<uuid:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<uuid:contact_id>/erase/", views.contact_erase, name="contact_erase"),
    path("products/", product_views.product_list, name="product_list"),
    path("products/<uuid:product_id>/", product_views.product_detail, name="product_detail"),
    path("demo-shop/", demo_shop.demo_shop, name="demo_shop"),
    path("settings/lifecycle/", stage_views.lifecycle_settings, name="lifecycle_settings"),
]
