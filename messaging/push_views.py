"""Browser endpoints for web push, beside /v1/track and with the same write key (HTTP Basic
user name) and CORS: the tracker's push helper (static/js/tracker.js) calls them from the shop's
pages.

- GET  /v1/push/key          → {"publicKey": the tenant's VAPID key (applicationServerKey)}
- POST /v1/push/subscribe    {anonymousId | userId, subscription: PushSubscription.toJSON()}
- POST /v1/push/unsubscribe  {endpoint}

Errors have the ingestion endpoints' shape: {"success": false, "code", "message", "field"?}.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.ingest_views import has_nul
from audience.models import MAX_ID_LENGTH
from messaging import push
from tenants.authentication import write_key_from_request
from tenants.models import Tenant
from tenants.selectors import ApiKeyError

MAX_BODY_BYTES = 8 * 1024  # a subscription is a few hundred bytes


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _error(status: int, code: str, message: str, field: str | None = None) -> JsonResponse:
    body: dict[str, Any] = {"success": False, "code": code, "message": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def _with_cors(response: HttpResponse, methods: str) -> HttpResponse:
    # As for /v1/track: no cookies are involved (the write key travels in the request), so any
    # origin — the tenant's shops — may call.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = f"{methods}, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response["Access-Control-Max-Age"] = "86400"
    return response


def _tenant(request: HttpRequest) -> Tenant:
    return write_key_from_request(request).tenant


def _unauthorized(exc: ApiKeyError) -> JsonResponse:
    response = _error(401, "unauthorized", str(exc))
    response["WWW-Authenticate"] = 'Basic realm="ingest"'
    return response


def _json_object(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.")
    if b"\\u0000" in request.body and has_nul(payload):
        raise BadRequest("The body contains the NUL character (\\u0000), which cannot be stored.")
    return payload


def _string(payload: dict[str, Any], key: str, *, where: str = "", limit: int) -> str | None:
    value = payload.get(key)
    name = f"{where}{key}"
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", name)
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters.", name)
    return value.strip() or None


def _object(payload: dict[str, Any], key: str, *, where: str = "") -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"{where}{key} must be a JSON object.", f"{where}{key}")
    return value


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
def push_key(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _with_cors(HttpResponse(status=204), "GET")
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return _with_cors(_unauthorized(exc), "GET")
    return _with_cors(JsonResponse({"publicKey": tenant.vapid_public_key}), "GET")


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def push_subscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _with_cors(HttpResponse(status=204), "POST")
    return _with_cors(_subscribe(request), "POST")


def _subscribe(request: HttpRequest) -> HttpResponse:
    # Authenticate before judging the body: strangers learn nothing about it.
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return _unauthorized(exc)
    try:
        payload = _json_object(request)
        anonymous_id = _string(payload, "anonymousId", limit=MAX_ID_LENGTH)
        user_id = _string(payload, "userId", limit=MAX_ID_LENGTH)
        if anonymous_id is None and user_id is None:
            raise BadRequest("Send the visitor's anonymousId or userId.", "anonymousId")
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
        return _error(400, "invalid", str(exc), exc.field)
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        field = f"subscription.{name}" if name == "endpoint" else f"subscription.keys.{name}"
        return _error(400, "invalid", messages[0], field)
    return JsonResponse({"success": True, "subscription": str(saved.public_id)})


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _with_cors(HttpResponse(status=204), "POST")
    return _with_cors(_unsubscribe(request), "POST")


def _unsubscribe(request: HttpRequest) -> HttpResponse:
    try:
        tenant = _tenant(request)
    except ApiKeyError as exc:
        return _unauthorized(exc)
    try:
        endpoint = _string(_json_object(request), "endpoint", limit=2000)
    except BadRequest as exc:
        return _error(400, "invalid", str(exc), exc.field)
    if endpoint is None:
        return _error(400, "invalid", "Send the subscription's endpoint.", "endpoint")
    # Another tenant's endpoint is as unknown as one that never existed.
    if not push.push_subscription_deactivate(
        tenant=tenant, endpoint=endpoint, reason="unsubscribed in the browser"
    ):
        return _error(404, "not_found", "No subscription with this endpoint.", "endpoint")
    return JsonResponse({"success": True})
