from __future__ import annotations

from django.urls import path

from audience import ingest_views

KINDS = ("identify", "track", "page", "screen", "alias", "group", "batch")

# Segment's analytics.js posts to one-letter paths (/v1/t, /v1/p, … and /v1/b when batching);
# the server SDKs and RudderStack's use the long names. Both reach the same view.
urlpatterns = (
    [path(f"{kind}", ingest_views.ingest, {"kind": kind}, name=f"ingest_{kind}") for kind in KINDS]
    + [
        path(f"{kind[0]}", ingest_views.ingest, {"kind": kind}, name=f"ingest_{kind}_short")
        for kind in KINDS
    ]
    + [path("m", ingest_views.sdk_metrics, name="sdk_metrics")]
)
