"""Messaging UI, mounted under /t/<tenant_slug>/; URL names are global like the other apps'."""

from __future__ import annotations

urlpatterns: list = []
