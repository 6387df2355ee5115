"""Links inside messages (no login): open pixel, click redirects, unsubscribe, preferences,
and confirming a team's From address.
Mounted under /m/, named after their views (messaging/links.py builds them)."""

from __future__ import annotations

from django.urls import path

from messaging import public_views

urlpatterns = [
    path("o/<str:token>.gif", public_views.open_pixel, name="open_pixel"),
    path("c/<str:token>", public_views.click, name="click"),
    path("pc/<str:token>", public_views.push_click, name="push_click"),
    path("u/<str:token>", public_views.unsubscribe, name="unsubscribe"),
    path("p/<str:token>", public_views.preferences, name="preferences"),
    path("s/<str:token>", public_views.sender_email_confirm, name="sender_email_confirm"),
]
