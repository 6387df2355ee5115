from __future__ import annotations

from django.urls import path

from audience import api

urlpatterns = [
    path("contacts/", api.ContactListAPI.as_view(), name="api-contacts"),
    path("contacts/<str:public_id>/", api.ContactDetailAPI.as_view(), name="api-contact"),
    path("events/", api.EventListAPI.as_view(), name="api-events"),
    path("products/", api.ProductListAPI.as_view(), name="api-products"),
]
