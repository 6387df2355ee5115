"""Messaging UI, mounted under /t/<tenant_slug>/; URL names are global like the other apps'."""

from __future__ import annotations

from django.urls import path

from messaging import views

urlpatterns = [
    path("messages/templates/", views.template_list, name="message_templates"),
    path("messages/templates/new/", views.template_new, name="message_template_new"),
    path(
        "messages/templates/<uuid:template_id>/",
        views.template_edit,
        name="message_template_edit",
    ),
    # The editor's helpers take the whole form, saved template or not (a "template" field).
    path("messages/templates/preview/", views.template_preview, name="message_template_preview"),
    path(
        "messages/templates/send-test/",
        views.template_send_test,
        name="message_template_send_test",
    ),
    path("messages/templates/contacts/", views.preview_contacts, name="message_preview_contacts"),
    path("messages/outbox/", views.delivery_list, name="deliveries"),
    path("messages/outbox/<uuid:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("messages/settings/", views.sending_settings, name="sending_settings"),
    path("messages/settings/sender/", views.sender_identity_edit, name="sender_identity_edit"),
    path("messages/suppressions/", views.suppression_list, name="suppressions"),
    path("messages/suppressions/add/", views.suppression_add, name="suppression_add"),
    path("messages/suppressions/remove/", views.suppression_remove, name="suppression_remove"),
]
