"""Outbound webhooks REST API, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from webhooks import api

ENDPOINT = "webhooks/endpoints/<str:public_id>"

urlpatterns = [
    path(
        "webhooks/endpoints/",
        api.WebhookEndpointListAPI.as_view(),
        name="api_webhook_endpoint_list",
    ),
    path(
        f"{ENDPOINT}/", api.WebhookEndpointDetailAPI.as_view(), name="api_webhook_endpoint_detail"
    ),
    path(
        f"{ENDPOINT}/rotate-secret/",
        api.WebhookEndpointRotateSecretAPI.as_view(),
        name="api_webhook_endpoint_rotate_secret",
    ),
    path(
        f"{ENDPOINT}/test/", api.WebhookEndpointTestAPI.as_view(), name="api_webhook_endpoint_test"
    ),
    path(
        f"{ENDPOINT}/messages/",
        api.WebhookMessageListAPI.as_view(),
        name="api_webhook_message_list",
    ),
    path(
        f"{ENDPOINT}/messages/<str:message_id>/replay/",
        api.WebhookMessageReplayAPI.as_view(),
        name="api_webhook_message_replay",
    ),
]
