"""Placeholder: the demo shop page is being written (see the Audience issue)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def demo_shop(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    return HttpResponse("The demo shop is not built yet.")
