"""Product search: REST API (secret key), mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from personalisation.search import api

urlpatterns = [
    path("search/", api.SearchAPI.as_view(), name="api_search"),
    path("search/synonyms/", api.SearchSynonymListAPI.as_view(), name="api_search_synonym_list"),
    path(
        "search/synonyms/<str:public_id>/",
        api.SearchSynonymDetailAPI.as_view(),
        name="api_search_synonym_detail",
    ),
]
