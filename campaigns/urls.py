"""Campaigns UI, mounted by config/urls.py under /t/<tenant_slug>/ (TenantMiddleware resolves
it). See campaigns/views.py."""

from __future__ import annotations

from django.urls import path

from campaigns import views

C = "campaigns/<uuid:campaign_id>/"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/audience/", views.campaign_audience, name="campaign_audience"),
    path("campaigns/variants/", views.campaign_variants, name="campaign_variants"),
    path(C, views.campaign_detail, name="campaign_detail"),
    path(C + "edit/", views.campaign_edit, name="campaign_edit"),
    path(C + "schedule/", views.campaign_schedule, name="campaign_schedule"),
    path(C + "unschedule/", views.campaign_unschedule, name="campaign_unschedule"),
    path(C + "pause/", views.campaign_pause, name="campaign_pause"),
    path(C + "resume/", views.campaign_resume, name="campaign_resume"),
    path(C + "cancel/", views.campaign_cancel, name="campaign_cancel"),
    path(C + "duplicate/", views.campaign_duplicate, name="campaign_duplicate"),
    path(C + "delete/", views.campaign_delete, name="campaign_delete"),
    path(C + "progress/", views.campaign_progress, name="campaign_progress"),
    path(C + "preview/", views.campaign_preview, name="campaign_preview"),
    path(C + "results/", views.campaign_results, name="campaign_results"),
]
