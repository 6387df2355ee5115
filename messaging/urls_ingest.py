"""Browser endpoints under /v1/ (write key): web-push subscriptions."""

from __future__ import annotations

urlpatterns: list = []
