"""GET /v1/recommendations: the browser's door (write key as HTTP Basic user name, CORS, the
/v1 error shape and the tracking rate per write key, as /v1/track and /v1/push/*).

Query: `anonymousId` and/or `userId` (one is required: the answer is recorded as their
`Recommendation Served` event; their calls still in the ingestion inbox are recorded first),
`strategy` (auto by default), `placement`, `product` (a sku; required by `similar`), `limit`
(1-24, 4 by default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.models import MAX_ID_LENGTH
from audience.selectors import contact_for_visitor
from audience.services import visitor_settle
from core import throttle
from core.body import BadRequest
from core.edge import edge_bad_request, edge_throttled, edge_unauthorized, with_cors
from personalisation.recommendations import services
from tenants.authentication import write_key_from_request
from tenants.selectors import ApiKeyError

View = Callable[[HttpRequest], HttpResponse]


def _throttled(view: View) -> View:
    """The tracking doors' rate per write key (core/throttle.py): 429 with Retry-After over it.
    A missing or wrong key is left to the view's 401."""

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


def _text(request: HttpRequest, key: str, limit: int) -> str | None:
    value = request.GET.get(key, "").strip()
    if len(value) > limit:
        raise BadRequest(f"{key} is longer than {limit} characters.", field=key)
    return value or None


def recommendation_query(
    request: HttpRequest,
) -> tuple[str, str, int, str | None]:
    """(strategy, placement, limit, product) from the query string, or BadRequest."""
    strategy = request.GET.get("strategy", "").strip() or services.RECOMMENDATION_AUTO
    if strategy not in services.STRATEGY_CHOICES:
        raise BadRequest(
            f"strategy must be one of {', '.join(services.STRATEGY_CHOICES)}.", field="strategy"
        )
    placement = request.GET.get("placement", "").strip() or services.DEFAULT_PLACEMENT
    if not services.PLACEMENT_PATTERN.match(placement):
        raise BadRequest(
            "placement: up to 100 letters, digits, '-', '_', '.' or ':'.", field="placement"
        )
    raw_limit = request.GET.get("limit", "").strip()
    try:
        limit = int(raw_limit) if raw_limit else services.DEFAULT_LIMIT
    except ValueError:
        limit = 0
    if not 1 <= limit <= services.MAX_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {services.MAX_LIMIT}.", field="limit"
        )
    product = _text(request, "product", 100)
    if strategy in services.NEEDS_PRODUCT and product is None:
        raise BadRequest(f"The {strategy} strategy needs a product (its sku).", field="product")
    return strategy, placement, limit, product


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
@_throttled
def recommendations_edge(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204), methods="GET")
    return with_cors(_recommendations(request), methods="GET")


def _recommendations(request: HttpRequest) -> HttpResponse:
    # Authenticate before judging the query: strangers learn nothing about it.
    try:
        tenant = write_key_from_request(request).tenant
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    try:
        anonymous_id = _text(request, "anonymousId", MAX_ID_LENGTH)
        user_id = _text(request, "userId", MAX_ID_LENGTH)
        if anonymous_id is None and user_id is None:
            raise BadRequest("Send the visitor's anonymousId or userId.", field="anonymousId")
        strategy, placement, limit, product = recommendation_query(request)
    except BadRequest as exc:
        return edge_bad_request(exc)
    # Read-your-writes: the page view or order the tracker sent a moment ago counts already
    # (what was just bought is never recommended back).
    visitor_settle(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
    contact = contact_for_visitor(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
    served = services.recommendation_serve(
        tenant=tenant,
        strategy=strategy,
        placement=placement,
        limit=limit,
        product=product,
        contact=contact,
        user_id=user_id,
        anonymous_id=anonymous_id,
    )
    response = JsonResponse(served.as_json())
    response["Cache-Control"] = "no-store"  # personal, and each answer is a recorded serving
    return response
