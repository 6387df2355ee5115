"""See analytics/urls.py."""

from __future__ import annotations

urlpatterns: list = []
