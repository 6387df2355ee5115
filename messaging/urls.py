"""Messaging UI, mounted under /t/<tenant_slug>/; URL names: see docs/architecture.md."""

from __future__ import annotations

from django.urls import path

from messaging import views

urlpatterns = [
    path("messages/templates/", views.template_list, name="template_list"),
    path("messages/templates/new/", views.template_new, name="template_new"),
    path(
        "messages/templates/<uuid:template_id>/",
        views.template_edit,
        name="template_edit",
    ),
    # The editor's helpers take the whole form, saved template or not (a "template" field).
    path("messages/templates/preview/", views.template_preview, name="template_preview"),
    path(
        "messages/templates/send-test/",
        views.template_send_test,
        name="template_send_test",
    ),
    path(
        "messages/templates/contacts/",
        views.template_preview_contacts,
        name="template_preview_contacts",
    ),
    path("messages/outbox/", views.delivery_list, name="delivery_list"),
    path("messages/outbox/<uuid:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("messages/settings/", views.sending_settings, name="sending_settings"),
    path("messages/settings/sender/", views.sender_identity_edit, name="sender_identity_edit"),
    path(
        "messages/settings/sender/resend/",
        views.sender_email_resend,
        name="sender_email_resend",
    ),
    path(
        "messages/settings/sender/cancel/",
        views.sender_email_cancel,
        name="sender_email_cancel",
    ),
    path("messages/suppressions/", views.suppression_list, name="suppression_list"),
    path("messages/suppressions/add/", views.suppression_add, name="suppression_add"),
    path("messages/suppressions/remove/", views.suppression_remove, name="suppression_remove"),
]
