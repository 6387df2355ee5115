"""The login lockout's hooks for django-axes (config/settings.py, "Throttling").

Axes counts wrong passwords per account and per client address; at AXES_FAILURE_LIMIT it
refuses further attempts, on the sign-in page and the admin's alike, until AXES_COOLOFF_TIME has
passed since the last one. Operators unlock in the admin or with `manage.py axes_reset`.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account an attempt is for, as sign-in reads it: Alice@Example.com and
    alice@example.com are one account, so they share one count."""
    raw = (credentials or {}).get("username") or request.POST.get("username") or ""
    return str(raw).strip().lower()


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """429 with Retry-After and a page that says when to try again (and that trying meanwhile
    starts the wait over)."""
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else 3600
    response = render(
        request,
        "registration/locked_out.html",
        {"retry_minutes": math.ceil(seconds / 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
