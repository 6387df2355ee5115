"""Analytics pages render in the team's time zone: every time a template shows is the team's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http.response import HttpResponseBase
from django.utils import timezone

from analytics import selectors
from tenants.decorators import TenantRequest


def team_time(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Run the view in the team's time zone: the templates show times there."""

    @functools.wraps(view)
    def wrapped(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with timezone.override(selectors.tenant_zone(request.tenant)):
            return view(request, *args, **kwargs)

    return wrapped
