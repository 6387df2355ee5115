"""Links inside messages (no login): open pixel, click redirects, unsubscribe, preferences.
Mounted under /m/ with the namespace "messaging" (messaging/links.py builds them)."""

from __future__ import annotations

app_name = "messaging"
urlpatterns: list = []
