from __future__ import annotations

from django.urls import path

from audience import ingest_views

urlpatterns = [
    path(f"{kind}", ingest_views.ingest, {"kind": kind}, name=f"ingest_{kind}")
    for kind in ("identify", "track", "page", "screen", "alias", "batch")
]
