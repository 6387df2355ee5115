"""Outbound webhooks UI, mounted under /t/<tenant_slug>/settings/webhooks/."""

from __future__ import annotations

from django.urls import path

from webhooks import views

ENDPOINT = "<uuid:endpoint_id>"

urlpatterns = [
    path("", views.webhook_endpoint_list, name="webhook_endpoint_list"),
    path("new/", views.webhook_endpoint_create, name="webhook_endpoint_create"),
    path(f"{ENDPOINT}/", views.webhook_endpoint_detail, name="webhook_endpoint_detail"),
    path(f"{ENDPOINT}/edit/", views.webhook_endpoint_edit, name="webhook_endpoint_edit"),
    path(f"{ENDPOINT}/toggle/", views.webhook_endpoint_toggle, name="webhook_endpoint_toggle"),
    path(
        f"{ENDPOINT}/rotate-secret/",
        views.webhook_endpoint_rotate_secret,
        name="webhook_endpoint_rotate_secret",
    ),
    path(f"{ENDPOINT}/test/", views.webhook_endpoint_test, name="webhook_endpoint_test"),
    path(f"{ENDPOINT}/delete/", views.webhook_endpoint_delete, name="webhook_endpoint_delete"),
    path(
        f"{ENDPOINT}/messages/<uuid:message_id>/replay/",
        views.webhook_message_replay,
        name="webhook_message_replay",
    ),
]
