"""Links inside messages (no login): open pixel, click redirects, unsubscribe, preferences.
Mounted under /m/ with the namespace "messaging" (messaging/links.py builds them)."""

from __future__ import annotations

from django.urls import path

from messaging import public_views

app_name = "messaging"
urlpatterns = [
    path("o/<str:token>.gif", public_views.open_pixel, name="open"),
    path("c/<str:token>", public_views.click, name="click"),
    path("pc/<str:token>", public_views.push_click, name="push-click"),
    path("u/<str:token>", public_views.unsubscribe, name="unsubscribe"),
    path("p/<str:token>", public_views.preferences, name="preferences"),
]
