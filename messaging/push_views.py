"""Browser endpoints for web push, beside /v1/track and with the same write key (HTTP Basic
user name) and CORS: the tracker's push helper (static/js/tracker.js) calls them from the shop's
pages.

- GET  /v1/push/key          → {"publicKey": the tenant's VAPID key (applicationServerKey)}
- POST /v1/push/subscribe    {anonymousId | userId, subscription: PushSubscription.toJSON()}
- POST /v1/push/unsubscribe  {endpoint}

Errors and CORS are the ingestion endpoints' (core/edge.py): {"success": false, "code",
"message", "field"?}.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.models import MAX_ID_LENGTH
from core import throttle
from core.body import BadRequest, body_json
from core.edge import edge_bad_request, edge_error, edge_throttled, edge_unauthorized, with_cors
from messaging import push
from messaging.selectors import sender_identity_get
from tenants.authentication import write_key_from_request
from tenants.models import Tenant
from tenants.selectors import ApiKeyError

MAX_BODY_BYTES = 8 * 1024  # a subscription is a few hundred bytes


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
                return with_cors(edge_throttled(retry_after))
        return view(request)

    return wrapped


def _tenant(request: HttpRequest) -> Tenant:
    return write_key_from_request(request).tenant


def _json_object(request: HttpRequest) -> dict[str, Any]:
    payload, _size = body_json(request, limit=MAX_BODY_BYTES)
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.")
    return payload


def _string(payload: dict[str, Any], key: str, *, where: str = "", limit: int) -> str | None:
    value = payload.get(key)
    name = f"{where}{key}"
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", field=name)
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters.", field=name)
    return value.strip() or None


def _object(payload: dict[str, Any], key: str, *, where: str = "") -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"{where}{key} must be a JSON object.", field=f"{where}{key}")
    return value


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
@_throttled
def push_key(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204), methods="GET")
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return with_cors(edge_unauthorized(str(exc)), methods="GET")
    public_key = sender_identity_get(tenant=tenant).vapid_public_key
    return with_cors(JsonResponse({"publicKey": public_key}), methods="GET")


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
@_throttled
def push_subscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204))
    return with_cors(_subscribe(request))


def _subscribe(request: HttpRequest) -> HttpResponse:
    # Authenticate before judging the body: strangers learn nothing about it.
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    try:
        payload = _json_object(request)
        anonymous_id = _string(payload, "anonymousId", limit=MAX_ID_LENGTH)
        user_id = _string(payload, "userId", limit=MAX_ID_LENGTH)
        if anonymous_id is None and user_id is None:
            raise BadRequest("Send the visitor's anonymousId or userId.", field="anonymousId")
        subscription = _object(payload, "subscription")
        keys = _object(subscription, "keys", where="subscription.")
        context = payload.get("context")
        saved = push.push_subscribe(
            tenant=tenant,
            anonymous_id=anonymous_id,
            user_id=user_id,
            endpoint=subscription.get("endpoint"),  # type: ignore[arg-type]  # validated there
            p256dh=keys.get("p256dh"),  # type: ignore[arg-type]
            auth=keys.get("auth"),  # type: ignore[arg-type]
            user_agent=request.headers.get("User-Agent", ""),
            context=context if isinstance(context, dict) else {},
        )
    except BadRequest as exc:
        return edge_bad_request(exc)
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        field = f"subscription.{name}" if name == "endpoint" else f"subscription.keys.{name}"
        return edge_error(400, "invalid", messages[0], field=field)
    return JsonResponse({"success": True, "subscription": str(saved.public_id)})


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
@_throttled
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204))
    return with_cors(_unsubscribe(request))


def _unsubscribe(request: HttpRequest) -> HttpResponse:
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    try:
        endpoint = _string(_json_object(request), "endpoint", limit=2000)
    except BadRequest as exc:
        return edge_bad_request(exc)
    if endpoint is None:
        return edge_error(400, "invalid", "Send the subscription's endpoint.", field="endpoint")
    # Another tenant's endpoint is as unknown as one that never existed.
    if not push.push_subscription_deactivate(
        tenant=tenant, endpoint=endpoint, reason="unsubscribed in the browser"
    ):
        return edge_error(404, "not_found", "No subscription with this endpoint.", field="endpoint")
    return JsonResponse({"success": True})
