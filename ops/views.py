from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from core.api_errors import api_error
from core.edge import edge_error, with_cors
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
    return answer or render(request, "404.html", status=404)


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
