"""Outbound webhooks UI, mounted under /t/<tenant_slug>/settings/webhooks/."""

from __future__ import annotations

urlpatterns: list = []
