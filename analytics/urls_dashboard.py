"""See analytics/urls.py: the team's home page and the dashboards (analytics/views.py)."""

from __future__ import annotations

from django.urls import path

from analytics import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("analytics/traffic/", views.analytics_traffic, name="analytics_traffic"),
    path("analytics/sales/", views.analytics_sales, name="analytics_sales"),
    path("analytics/retention/", views.analytics_retention, name="analytics_retention"),
    path("analytics/messages/", views.analytics_messages, name="analytics_messages"),
    path("analytics/nps/", views.analytics_nps, name="analytics_nps"),
]
