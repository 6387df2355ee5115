from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from core.api_errors import api_error
from core.edge import edge_error, with_cors
from ops.selectors import health_report
from tenants.selectors import tenant_for_member


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker, last beat tick and last worker heartbeat. 503 only when the web process
    cannot do its job (database or broker down); stale beat/worker show as "degraded"."""
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You may not do that here."
    return render(request, "403.html", {"message": message}, status=403)


def _json_error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse | None:
    """The error in the documented JSON shape of the door asked, or None for the UI's pages:
    the REST API's under /api/, Segment's (with CORS, so the shop's page can read it) under /v1/."""
    if request.path.startswith("/api/"):
        return JsonResponse(api_error(code=code, message=message), status=status)
    if request.path.startswith("/v1/"):
        return with_cors(edge_error(status, code, message), methods="GET, POST")
    return None


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Django's own refusals (a malformed multipart body, too many fields, a bad Host).
    answer = _json_error(request, 400, "invalid", "The request is malformed.")
    return answer or defaults.bad_request(request, exception or Exception())


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    answer = _json_error(request, 404, "not_found", "Not found.")
    if answer is not None:
        return answer
    _keep_the_team(request)
    return render(request, "404.html", status=404)


_TEAM_PATH = re.compile(r"^/t/([-a-zA-Z0-9_]+)/")


def _keep_the_team(request: HttpRequest) -> None:
    """A wrong address inside a team's pages (no view matched, so the tenant middleware never
    ran) still shows that team's sidebar and switcher, for a member: the 404 page keeps the
    team instead of dropping the user out of it."""
    match = _TEAM_PATH.match(request.path)
    user = getattr(request, "user", None)
    if getattr(request, "tenant", None) is not None or not match or not user:
        return
    if not user.is_authenticated:
        return
    try:
        tenant, membership = tenant_for_member(user=user, slug=match.group(1))
    except Http404:
        return  # not a member: nothing of the team is shown, as for any other 404
    request.tenant = tenant  # type: ignore[attr-defined]
    request.membership = membership  # type: ignore[attr-defined]


# The page is self-contained (its one <style> block cannot carry a nonce: no context) and runs
# no script, so its policy allows inline styles and nothing else.
@csp_override(
    {
        "default-src": [CSP.NONE],
        "style-src": [CSP.UNSAFE_INLINE],
        "base-uri": [CSP.NONE],
        "form-action": [CSP.NONE],
        "frame-ancestors": [CSP.NONE],
    }
)
def error_500(request: HttpRequest) -> HttpResponse:
    # Django has logged the exception (django.request) before calling this. Nothing here may
    # touch the database: the database may be why we are here.
    answer = _json_error(request, 500, "server_error", "Something went wrong on our side.")
    if answer is not None:
        return answer
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
