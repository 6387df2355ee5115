from __future__ import annotations

from django.urls import path

from audience import api

urlpatterns = [
    path("contacts/", api.ContactListAPI.as_view(), name="api_contact_list"),
    path("contacts/<str:public_id>/", api.ContactDetailAPI.as_view(), name="api_contact_detail"),
    path("events/", api.EventListAPI.as_view(), name="api_event_list"),
    path("products/", api.ProductListAPI.as_view(), name="api_product_list"),
]
