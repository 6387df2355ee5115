"""The tracker's survey endpoints (write key as HTTP Basic user name, CORS, the /v1 error shape
of core/edge.py, the tracking doors' rate per key):

- GET  /v1/surveys/<id>?anonymousId=&userId=  → {"survey", "kind", "title", "question",
  "questions": [{"id", "type", "label", "choices"}], "thanks", "answered"}
- POST /v1/surveys/<id>/answers  {anonymousId, userId, score, comment, answers}
  → 201 {"success": true}; 409 {"code": "already_answered"}; 400 naming the field.

A web answer's send is "web": one per visitor and survey. Another team's survey, a closed or a
missing one is a 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audience.selectors import contact_for_visitor
from core import throttle
from core.body import BadRequest, body_json
from core.edge import edge_bad_request, edge_error, edge_throttled, edge_unauthorized, with_cors
from personalisation.surveys import selectors, services
from personalisation.surveys.models import WEB_SEND, AnswerChannel, Survey
from tenants.authentication import write_key_from_request
from tenants.models import Tenant
from tenants.selectors import ApiKeyError

MAX_BODY_BYTES = 16 * 1024  # a comment of 2,000 characters and five answers fit many times


def _throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The tracking doors' rate per write key (core/throttle.py): 429 with Retry-After."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "OPTIONS":
            try:
                prefix = write_key_from_request(request).prefix
            except ApiKeyError:
                prefix = None
            if prefix and (retry_after := throttle.TRACKING.hit(prefix)) is not None:
                return with_cors(edge_throttled(retry_after), methods=request.method or "GET")
        return view(request, *args, **kwargs)

    return wrapped


def _survey(tenant: Tenant, public_id: str) -> Survey | None:
    survey = selectors.survey_for_tracker(tenant=tenant, public_id=public_id)
    return survey if survey is not None and survey.active else None


def _not_found() -> JsonResponse:
    return edge_error(404, "not_found", "No open survey with this id.")


def _visitor(values: dict[str, Any]) -> services.Respondent:
    user_id = services.visitor_id_clean(values.get("userId"), "userId")
    anonymous_id = services.visitor_id_clean(values.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise BadRequest("Send the visitor's anonymousId or userId.", field="anonymousId")
    tenant = values["_tenant"]
    contact = contact_for_visitor(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)
    return services.Respondent(contact=contact, user_id=user_id, anonymous_id=anonymous_id)


def _first_error(exc: ValidationError) -> JsonResponse:
    field, messages = next(iter(exc.message_dict.items()))
    return edge_error(400, "invalid", messages[0], field=field)


def survey_payload(survey: Survey, *, answered: bool) -> dict[str, Any]:
    return {
        "survey": str(survey.public_id),
        "kind": survey.kind,
        "title": survey.name,
        "question": survey.question,
        "questions": [
            {"id": q["id"], "type": q["type"], "label": q["label"], "choices": q["choices"]}
            for q in survey.question_list()
        ],
        "thanks": survey.thanks_text,
        "answered": answered,
    }


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
@_throttled
def survey_read(request: HttpRequest, survey_id: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204), methods="GET")
    return with_cors(_read(request, survey_id), methods="GET")


def _read(request: HttpRequest, survey_id: str) -> HttpResponse:
    try:
        tenant = write_key_from_request(request).tenant
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    survey = _survey(tenant, survey_id)
    if survey is None:
        return _not_found()
    answered = False
    try:
        if request.GET.get("userId") or request.GET.get("anonymousId"):
            visitor = _visitor({**request.GET.dict(), "_tenant": tenant})
            answered = selectors.answer_exists(
                tenant=tenant, survey=survey, send=WEB_SEND, respondents=visitor.keys()
            )
    except BadRequest as exc:
        return edge_bad_request(exc)
    except ValidationError as exc:
        return _first_error(exc)
    return JsonResponse(survey_payload(survey, answered=answered))


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
@_throttled
def survey_answer(request: HttpRequest, survey_id: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return with_cors(HttpResponse(status=204))
    return with_cors(_answer(request, survey_id))


def _answer(request: HttpRequest, survey_id: str) -> HttpResponse:
    # Authenticate before judging the body: strangers learn nothing about it.
    try:
        tenant = write_key_from_request(request).tenant
    except ApiKeyError as exc:
        return edge_unauthorized(str(exc))
    survey = _survey(tenant, survey_id)
    if survey is None:
        return _not_found()
    try:
        payload, _size = body_json(request, limit=MAX_BODY_BYTES)
        if not isinstance(payload, dict):
            raise BadRequest("The body must be a JSON object.")
        visitor = _visitor({**payload, "_tenant": tenant})
        context = payload.get("context")
        services.answer_record(
            tenant=tenant,
            survey=survey,
            respondent=visitor,
            channel=AnswerChannel.WEB,
            send=WEB_SEND,
            score=payload.get("score"),
            comment=payload.get("comment") or "",
            answers=payload.get("answers"),
            context=context if isinstance(context, dict) else None,
        )
    except BadRequest as exc:
        return edge_bad_request(exc)
    except ValidationError as exc:
        return _first_error(exc)
    except services.AlreadyAnswered:
        return edge_error(409, "already_answered", "This visitor has answered this survey already.")
    return JsonResponse({"success": True}, status=201)
