"""REST API for messaging under /api/v1/ (secret key)."""

from __future__ import annotations

urlpatterns: list = []
