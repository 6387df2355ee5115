"""Product search: Browser endpoints (write key, CORS), mounted under /v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.search import browser_views

urlpatterns = [
    path("search", browser_views.browser_search, name="browser_search"),
]
