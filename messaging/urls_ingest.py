"""Browser endpoints under /v1/ (write key): web-push subscriptions."""

from __future__ import annotations

from django.urls import path

from messaging import push_views

urlpatterns = [
    path("push/key", push_views.push_key, name="push_key"),
    path("push/subscribe", push_views.push_subscribe, name="push_subscribe"),
    path("push/unsubscribe", push_views.push_unsubscribe, name="push_unsubscribe"),
]
