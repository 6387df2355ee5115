"""The email service providers' tracking webhooks, mounted under /anymail/ where django-anymail
documents them (messaging/esp_webhooks.py: refused until authenticated)."""

from __future__ import annotations

from django.urls import path

from messaging import esp_webhooks

urlpatterns = [
    path("<slug:esp>/tracking/", esp_webhooks.esp_tracking_webhook, name="esp_tracking_webhook"),
    # Mandrill's one URL for all its events, as anymail mounts it.
    path(
        "mandrill/",
        esp_webhooks.esp_tracking_webhook,
        {"esp": "mandrill"},
        name="esp_tracking_webhook_mandrill",
    ),
]
