"""The hosted survey page, /s/<token>/: the link in an email or a push notification.

No login and no tenant in the URL: the signed token (personalisation/surveys/links.py) names
the tenant, the survey, the contact and the delivery, and the delivery must belong to that
contact. The page works without JavaScript (a plain form) under the strict CSP.

GET shows the question; `?score=N` (the one-click links of an NPS row in an email) opens it
with N chosen. A GET never records an answer: mail scanners and link previews open every link
in a message, and must not answer for the reader. POST records it once per contact and
message; a second answer gets the friendly "already answered" page with 409.
"""

from __future__ import annotations

import re
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core import rls
from messaging.models import Channel, Delivery
from personalisation.surveys import links, selectors, services
from personalisation.surveys.models import AnswerChannel, Survey

TEMPLATES = "personalisation/surveys/public"


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    response = render(request, f"{TEMPLATES}/{template}", context, status=status)
    # A personal link: out of search engines and shared caches.
    response["X-Robots-Tag"] = "noindex, nofollow"
    add_never_cache_headers(response)
    return response


def _resolve(token: str) -> tuple[Survey, Delivery] | None:
    try:
        ref = links.token_read(token)
    except signing.BadSignature:
        return None
    rls.tenant_set(ref.tenant_id)
    delivery = (
        Delivery.objects.select_related("tenant", "contact")
        .filter(tenant_id=ref.tenant_id, public_id=ref.send)
        .first()
    )
    if delivery is None or delivery.contact.public_id != ref.contact:
        return None
    survey = Survey.objects.filter(tenant_id=ref.tenant_id, public_id=ref.survey).first()
    if survey is None:
        return None
    return survey, delivery


def _score_from(value: str | None) -> int | None:
    if value is not None and re.fullmatch(r"[0-9]{1,2}", value) and int(value) <= 10:
        return int(value)
    return None


def _questions(survey: Survey, values: dict[str, Any], errors: dict[str, list[str]]) -> list[Any]:
    """Each question with what the reader chose and its errors, for the form."""
    return [
        {
            **q,
            "value": values.get(q["id"], ""),
            "errors": errors.get(f"answers.{q['id']}", []),
            "scale": [str(n) for n in range(1, 6)],
        }
        for q in survey.question_list()
    ]


# The token is the credential (no session, no cookie): a cross-site form could only post what
# the holder of the link could, so CSRF protection adds nothing and would fail readers whose
# browser refuses cookies.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    found = _resolve(token)
    if found is None:
        return _page(request, "invalid.html", {}, status=404)
    survey, delivery = found
    tenant, contact = delivery.tenant, delivery.contact
    send = str(delivery.public_id)
    base = {"survey": survey, "tenant": tenant}
    respondent = services.Respondent(contact=contact)
    if selectors.answer_exists(
        tenant=tenant, survey=survey, send=send, respondents=respondent.keys()
    ):
        return _page(
            request, "answered.html", base, status=409 if request.method == "POST" else 200
        )
    if not survey.active:
        return _page(request, "closed.html", base)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    score: int | None = _score_from(request.GET.get("score"))
    comment = ""
    if request.method == "POST":
        score_raw = request.POST.get("score", "")
        score = _score_from(score_raw)
        comment = request.POST.get("comment", "")
        values = {q["id"]: request.POST.get(q["id"], "") for q in survey.question_list()}
        channel = AnswerChannel.PUSH if delivery.channel == Channel.PUSH else AnswerChannel.EMAIL
        try:
            services.answer_record(
                tenant=tenant,
                survey=survey,
                respondent=respondent,
                channel=channel,
                send=send,
                score=score_raw if survey.is_nps else None,
                comment=comment,
                answers=None if survey.is_nps else values,
            )
        except services.AlreadyAnswered:
            return _page(request, "answered.html", base, status=409)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return _page(request, "thanks.html", base)
    context = {
        **base,
        "token": token,
        "score": score,
        "scores": [(n, "selected" if n == score else "") for n in range(11)],
        "comment": comment,
        "questions": _questions(survey, values, errors),
        "errors": errors,
        "chosen": score is not None and request.method == "GET",
    }
    return _page(request, "page.html", context, status=400 if errors else 200)
