from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def role_required(
    minimum: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Allow the view only to members with at least `minimum` role (TenantMiddleware has already
    turned away non-members)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.membership.has_role(minimum):  # type: ignore[attr-defined]
                raise PermissionDenied(f"This needs the {minimum} role or higher.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
