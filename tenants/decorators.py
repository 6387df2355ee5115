"""What every app's HTML views build on: the request types the middleware hands them, and the
role check."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from tenants.models import Membership, Tenant


# Request types for annotations only: they describe what middleware set on the HttpRequest.
class HtmxRequest(HttpRequest):
    htmx: HtmxDetails  # django-htmx's HtmxMiddleware


class UserRequest(HtmxRequest):
    """A request of a logged-in user (a view behind @login_required)."""

    user: User


class TenantRequest(UserRequest):
    """A request under /t/<tenant_slug>/: TenantMiddleware resolved the team and the membership
    of the user, or the view never runs."""

    tenant: Tenant
    membership: Membership


def role_required(
    minimum: str,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Allow the view only to members with at least `minimum` role (TenantMiddleware has already
    turned away non-members)."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapped(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.membership.has_role(minimum):
                raise PermissionDenied(f"This needs the {minimum} role or higher.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
