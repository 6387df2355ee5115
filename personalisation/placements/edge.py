"""The browser endpoint of placements, beside /v1/track and with the same write key (HTTP Basic
user name), CORS, error shape (core/edge.py) and rate per key:

    GET /v1/placements?keys=home-banner,cart-upsell&anonymousId=…&userId=…
    → {"placements": {"home-banner": {"placement", "variant", "name", "title", "body",
                                      "imageUrl", "linkUrl", "linkText"} | null, …}}

An unknown key, or a placement with no variant to serve, answers null. Before deciding, the
visitor's calls still in the ingestion inbox are recorded (audience.services.visitor_settle), so
the banner follows what they did on the page before: "within one page view".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.models import MAX_ID_LENGTH
from audience.selectors import contact_for_visitor
from audience.services import visitor_settle
from core import throttle
from core.bad_request import BadRequest
from core.edge import edge_bad_request, edge_throttled, edge_unauthorized, with_cors
from personalisation.placements.models import KEY_RE, PlacementVariant
from personalisation.placements.selectors import active_variants
from personalisation.placements.services import placements_decide
from tenants.authentication import write_key_from_request
from tenants.selectors import ApiKeyError

MAX_KEYS = 10  # placements per request: a page has a handful


def _throttled(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """The tracking doors' rate per write key (core/throttle.py), shared with /v1/track: 429
    with Retry-After over it. A missing or wrong key is left to the view's 401."""

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


def variant_document(variant: PlacementVariant) -> dict[str, Any]:
    """What the tracker renders: plain text and URLs (it sets them with textContent and
    attributes, never as HTML)."""
    return {
        "placement": variant.placement.key,
        "variant": str(variant.public_id),
        "name": variant.name,
        "title": variant.title,
        "body": variant.body,
        "imageUrl": variant.image_url,
        "linkUrl": variant.link_url,
        "linkText": variant.link_text,
    }


def _keys(request: HttpRequest) -> list[str]:
    raw = request.GET.get("keys", "")
    keys = list(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    if not keys:
        raise BadRequest("Name the placements: keys=home-banner,cart-upsell.", field="keys")
    if len(keys) > MAX_KEYS:
        raise BadRequest(f"Ask for at most {MAX_KEYS} placements at once.", field="keys")
    for key in keys:
        if not KEY_RE.match(key):
            raise BadRequest(f"{key[:70]!r} is not a placement key.", field="keys")
    return keys


def _visitor_id(request: HttpRequest, name: str) -> str | None:
    value = request.GET.get(name, "").strip()
    if len(value) > MAX_ID_LENGTH:
        raise BadRequest(f"{name} is longer than {MAX_ID_LENGTH} characters.", field=name)
    return value or None


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
@_throttled
def placements_serve(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204), methods="GET")
    return with_cors(_serve(request), methods="GET")


def _serve(request: HttpRequest) -> HttpResponse:
    # Authenticate before judging the query: strangers learn nothing about it.
    try:
        tenant = write_key_from_request(request).tenant
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    try:
        keys = _keys(request)
        anonymous_id = _visitor_id(request, "anonymousId")
        user_id = _visitor_id(request, "userId")
    except BadRequest as exc:
        return edge_bad_request(exc)
    variants = active_variants(tenant=tenant, keys=keys)
    contact = None
    # Who the visitor is matters only when a variant targets someone: a placement of defaults
    # alone costs no settle, no contact and no membership refresh.
    if (user_id or anonymous_id) and any(v.targeted for v in variants):
        visitor_settle(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
        contact = contact_for_visitor(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
    chosen = placements_decide(tenant=tenant, keys=keys, contact=contact, variants=variants)
    response = JsonResponse(
        {
            "placements": {
                key: None if variant is None else variant_document(variant)
                for key, variant in chosen.items()
            }
        }
    )
    response["Cache-Control"] = "private, no-store"  # this visitor's, now
    return response
