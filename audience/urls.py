"""Audience UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves it)."""

from __future__ import annotations

from django.urls import path

from audience import demo_shop, views

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<uuid:contact_id>/", views.contact_detail, name="contact_detail"),
    path("contacts/<uuid:contact_id>/timeline/", views.contact_timeline, name="contact_timeline"),
    path("contacts/<uuid:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<uuid:contact_id>/erase/", views.contact_erase, name="contact_erase"),
    path("demo-shop/", demo_shop.demo_shop, name="demo_shop"),
]
