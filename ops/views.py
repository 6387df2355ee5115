from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from core.api_errors import api_error
from ops.selectors import health_report


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


API_PREFIXES = ("/api/", "/v1/")


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(api_error(code="not_found", message="Not found."), status=404)
    return render(request, "404.html", status=404)


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
    # No context processors that touch the database: the database may be why we are here.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
