"""Refusals that apply to every door before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from core.api_errors import api_error
from core.edge import edge_error, with_cors


def refuse_nul_in_query(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[..., HttpResponse]:
    """A query string with a NUL character (%00) is refused with 400 in the door's shape: it
    would reach a filter, and PostgreSQL refuses NUL in any text (a 500 otherwise). Unpaired
    surrogates cannot arrive this way: Django decodes bad UTF-8 in URLs as U+FFFD."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            name = next(
                (
                    k
                    for k, values in request.GET.lists()
                    if "\x00" in k or any("\x00" in v for v in values)
                ),
                None,
            )
            if name is not None:
                return _refusal(request, repr(name)[1:-1])
        return get_response(request)

    return middleware


def _refusal(request: HttpRequest, name: str) -> HttpResponse:
    message = f"The query parameter {name} contains the NUL character (%00), which cannot be used."
    if request.path.startswith("/api/"):
        return JsonResponse(
            api_error(code="invalid", message=message, fields={name: [message]}), status=400
        )
    if request.path.startswith("/v1/"):
        return with_cors(edge_error(400, "invalid", message, field=name), methods="GET, POST")
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
