"""Browser endpoints under /v1/ (write key): web-push subscriptions."""

from __future__ import annotations

from django.urls import path

from messaging import push_views

app_name = "push"
urlpatterns = [
    path("push/key", push_views.push_key, name="key"),
    path("push/subscribe", push_views.push_subscribe, name="subscribe"),
    path("push/unsubscribe", push_views.push_unsubscribe, name="unsubscribe"),
]
