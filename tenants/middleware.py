"""Resolves the tenant of every UI URL under /t/<tenant_slug>/ once, at the edge.

Every view mounted with a `tenant_slug` URL argument gets `request.tenant` and
`request.membership`, or never runs: anonymous users go to the login page, non-members get 404
(as if the team did not exist), and viewers get 403 on any request that could change something.
Views that need more than "marketer" add `@role_required(Role.ADMIN)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core import rls
from tenants.models import Role
from tenants.selectors import team_zone, tenant_for_member

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The team whose pages the user saw last: "/" takes them back to it.
LAST_TENANT_SESSION_KEY = "wayfarer.last_tenant"


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()  # the team's zone, activated below, ends with its request

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        slug = view_kwargs.get("tenant_slug")
        if slug is None:
            _admin_scope(request)
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        # 404 if not a member; scopes the connection to the tenant (row-level security).
        tenant, membership = tenant_for_member(user=request.user, slug=slug)
        if request.method not in SAFE_METHODS and not membership.has_role(Role.MARKETER):
            raise PermissionDenied("Viewers can look but not change anything.")
        request.tenant = tenant  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        # Every time a team's page shows is in the team's zone (Settings → time zone).
        timezone.activate(team_zone(tenant))
        if request.session.get(LAST_TENANT_SESSION_KEY) != tenant.slug:  # a write only on a change
            request.session[LAST_TENANT_SESSION_KEY] = tenant.slug
        return None


def _admin_scope(request: HttpRequest) -> None:
    """Django's admin spans tenants for the operators allowed in (staff): the system scope of
    row-level security (core/rls.py). Which tenants a staff operator may touch there is the
    admin classes' own rule (TenantScopedAdmin)."""
    match = request.resolver_match
    user = request.user
    if match is not None and match.app_name == "admin" and user.is_active and user.is_staff:
        rls.system_set()
