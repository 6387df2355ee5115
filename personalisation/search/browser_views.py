"""GET /v1/search: the tracker's product search (`wayfarer.search(q, opts)`), with the write key
as HTTP Basic user name, CORS, the /v1 error shape and the tracking doors' throttle, as
messaging/push_views.py's endpoints.

    GET /v1/search?q=&limit=&offset=&category=&anonymousId=&userId=
    → {"searchId", "query", "corrected" | null, "total", "products": [product, …]}

The visitor (anonymousId and/or userId, both optional) is who the results are ranked for, and
who the `Products Searched` event is recorded on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.models import MAX_ID_LENGTH
from core import throttle
from core.edge import edge_error, edge_throttled, edge_unauthorized, with_cors
from personalisation.search import services
from personalisation.search.forms import SearchParamsForm
from personalisation.search.selectors import search_contact
from tenants.authentication import write_key_from_request
from tenants.selectors import ApiKeyError


def _throttled(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """The tracking doors' rate per write key (core/throttle.py), shared with /v1/track."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method != "OPTIONS":
            try:
                prefix = write_key_from_request(request).prefix  # cached: no query
            except ApiKeyError:
                prefix = None
            if prefix and (retry_after := throttle.TRACKING.hit(prefix)) is not None:
                return with_cors(edge_throttled(retry_after), methods="GET")
        return view(request)

    return wrapped


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
@_throttled
def browser_search(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204), methods="GET")
    return with_cors(_search(request), methods="GET")


def _search(request: HttpRequest) -> HttpResponse:
    # Authenticate before judging the query: strangers learn nothing about it.
    try:
        tenant = write_key_from_request(request).tenant
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    form = SearchParamsForm(request.GET)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        return edge_error(400, "invalid", str(errors[0]), field=field)
    visitor: dict[str, str | None] = {}
    for key in ("anonymousId", "userId"):
        value = request.GET.get(key, "").strip()
        if len(value) > MAX_ID_LENGTH:
            return edge_error(
                400, "invalid", f"{key} is longer than {MAX_ID_LENGTH} characters.", field=key
            )
        visitor[key] = value or None
    contact = search_contact(
        tenant=tenant, user_id=visitor["userId"], anonymous_id=visitor["anonymousId"]
    )
    answer = services.search_run(
        tenant=tenant,
        query=form.cleaned_data["q"],
        limit=form.cleaned_data["limit"],
        offset=form.cleaned_data["offset"],
        category=form.cleaned_data["category"],
        contact=contact,
        user_id=visitor["userId"],
        anonymous_id=visitor["anonymousId"],
    )
    response = JsonResponse(answer.as_json())
    response["Cache-Control"] = "no-store"  # ranked for this visitor
    return response
