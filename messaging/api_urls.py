"""REST API for messaging under /api/v1/ (secret key)."""

from __future__ import annotations

from django.urls import path

from messaging import api

urlpatterns = [
    path("messages/", api.MessageListAPI.as_view(), name="api_message_list"),
    path("messages/<str:public_id>/", api.MessageDetailAPI.as_view(), name="api_message_detail"),
    path("message-templates/", api.TemplateListAPI.as_view(), name="api_template_list"),
    path(
        "message-templates/<str:public_id>/",
        api.TemplateDetailAPI.as_view(),
        name="api_template_detail",
    ),
    path("sender-identity/", api.SenderIdentityAPI.as_view(), name="api_sender_identity"),
]
