from __future__ import annotations

from django.urls import path

from audience import ingest_views

app_name = "ingest"
urlpatterns = [
    path(f"{kind}", ingest_views.ingest, {"kind": kind}, name=kind)
    for kind in ("identify", "track", "page", "screen", "alias", "batch")
]
