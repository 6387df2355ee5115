"""Product search: UI, mounted under /t/<tenant_slug>/personalisation/search/."""

from __future__ import annotations

from django.urls import path

from personalisation.search import views

SYNONYM = "synonyms/<uuid:synonym_id>"

urlpatterns = [
    path("", views.search_insights, name="search_insights"),
    path("synonyms/", views.search_synonym_create, name="search_synonym_create"),
    path(f"{SYNONYM}/edit/", views.search_synonym_edit, name="search_synonym_edit"),
    path(f"{SYNONYM}/delete/", views.search_synonym_delete, name="search_synonym_delete"),
]
