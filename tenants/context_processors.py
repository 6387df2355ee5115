from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from tenants.selectors import memberships_for_user


def tenant_navigation(request: HttpRequest) -> dict[str, Any]:
    """The current tenant and, for the switcher, every tenant the user belongs to."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        # Lazy: only queried by templates that render the switcher (in the system scope: the
        # user's teams span tenants).
        "user_memberships": SimpleLazyObject(lambda: memberships_for_user(user=user)),
    }
