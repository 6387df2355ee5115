"""Outbound webhooks REST API, mounted under /api/v1/."""

from __future__ import annotations

urlpatterns: list = []
