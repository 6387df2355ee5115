"""Surveys' writes: creating and changing a survey, and recording an answer.

An answer is stored once per respondent and send (`SurveyAnswer`'s `survey_answer_once`) and
becomes a `Survey Answered` event in the same transaction: through `events_record` for a
contact Wayfarer knows (an email or push link names one; so may the tracker's visitor), through
the ingestion inbox (`visitor_events_accept`) for a browser visitor it does not know yet, which
also makes them a contact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.timezone import now

from audience.models import MAX_ID_LENGTH, Contact
from audience.services import Fact, events_record, visitor_events_accept
from core.storable import text_problem
from personalisation.surveys.models import (
    MAX_CHOICES,
    MAX_QUESTIONS,
    SCALE_MAX,
    SCALE_MIN,
    SURVEY_ANSWERED,
    WEB_SEND,
    AnswerChannel,
    QuestionType,
    Survey,
    SurveyAnswer,
    SurveyKind,
)
from tenants.models import Tenant

SOURCE = "surveys"  # the events' source (and their message ids': wf:surveys:…)
MAX_COMMENT = 2000
MAX_TEXT_ANSWER = 1000
MAX_LABEL = 200
MAX_CHOICE = 100
DIGITS = re.compile(r"[0-9]{1,3}")  # a number typed in a form ("²".isdigit() is true)
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


class AlreadyAnswered(Exception):
    """This respondent has answered this survey for this send already."""


@dataclass(frozen=True)
class Respondent:
    """Who answers: a contact, or a browser visitor not yet known (their ids)."""

    contact: Contact | None = None
    user_id: str | None = None
    anonymous_id: str | None = None

    def keys(self) -> list[str]:
        """Every respondent key this person may have answered under, the stored one first."""
        found = [str(self.contact.public_id)] if self.contact is not None else []
        if self.user_id:
            found.append(f"user:{self.user_id}")
        if self.anonymous_id:
            found.append(f"anon:{self.anonymous_id}")
        return found


# --- surveys ---------------------------------------------------------------------------------


def _text(value: Any, field: str, *, limit: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: ["Enter text."]})
    problem = text_problem(value)  # a NUL or a lone surrogate: no database stores them
    if problem:
        raise ValidationError({field: [f"Text that {problem} cannot be stored."]})
    value = value.strip()
    if required and not value:
        raise ValidationError({field: ["This field is required."]})
    if len(value) > limit:
        raise ValidationError({field: [f"At most {limit} characters."]})
    return value


def questions_clean(
    raw: Any, *, previous: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """A short survey's questions, validated: 1 to 5, each a known type with a label, a choice
    question with 2 to 10 distinct choices. A question keeps its id (given, or the previous
    question's at the same position), so answers already given still add up after an edit."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"questions": ["Add at least one question."]})
    if len(raw) > MAX_QUESTIONS:
        raise ValidationError(
            {"questions": [f"A short survey has at most {MAX_QUESTIONS} questions."]}
        )
    previous_ids = [q.get("id") for q in previous or [] if isinstance(q, dict)]
    clean: list[dict[str, Any]] = []
    used: set[str] = set()
    for n, item in enumerate(raw, start=1):
        where = f"questions.{n}"
        if not isinstance(item, dict):
            raise ValidationError({where: ["Each question must be an object."]})
        kind = item.get("type")
        if kind not in QuestionType.values:
            raise ValidationError(
                {f"{where}.type": [f"Choose one of: {', '.join(QuestionType.values)}."]}
            )
        label = _text(item.get("label"), f"{where}.label", limit=MAX_LABEL)
        question: dict[str, Any] = {"id": "", "type": kind, "label": label, "choices": []}
        if kind == QuestionType.CHOICE:
            choices = item.get("choices")
            if isinstance(choices, str):
                choices = choices.splitlines()
            if not isinstance(choices, list):
                raise ValidationError({f"{where}.choices": ["Give the choices as a list."]})
            names = [
                _text(c, f"{where}.choices", limit=MAX_CHOICE, required=False) for c in choices
            ]
            names = list(dict.fromkeys(c for c in names if c))
            if not 2 <= len(names) <= MAX_CHOICES:
                raise ValidationError(
                    {f"{where}.choices": [f"Give 2 to {MAX_CHOICES} different choices."]}
                )
            question["choices"] = names
        wanted = item.get("id")
        if not (isinstance(wanted, str) and re.fullmatch(r"q[0-9]{1,3}", wanted)):
            wanted = previous_ids[n - 1] if n - 1 < len(previous_ids) else None
        question["id"] = wanted if isinstance(wanted, str) and wanted not in used else ""
        if question["id"]:
            used.add(question["id"])
        clean.append(question)
    counter = 1
    for question in clean:  # new questions get the next free ids
        while not question["id"]:
            candidate = f"q{counter}"
            counter += 1
            if candidate not in used:
                question["id"] = candidate
                used.add(candidate)
    return clean


def _key_free(tenant: Tenant, key: str, survey: Survey | None) -> bool:
    taken = Survey.objects.filter(tenant=tenant, key=key)
    if survey is not None:
        taken = taken.exclude(pk=survey.pk)
    return not taken.exists()


def _key_from_name(tenant: Tenant, name: str) -> str:
    base = (slugify(name).replace("-", "_") or "survey")[:40]
    if not base[0].isalpha():
        base = f"s_{base}"[:40]
    key, n = base, 1
    while not _key_free(tenant, key, None):
        n += 1
        key = f"{base}_{n}"
    return key


def _fields_clean(
    *,
    tenant: Tenant,
    survey: Survey | None,
    name: Any,
    kind: Any,
    question: Any,
    questions: Any,
    thanks: Any,
    key: Any,
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for field, value, limit, required in (
        ("name", name, 120, True),
        ("question", question, 300, True),
        ("thanks", thanks, 300, False),
    ):
        try:
            clean[field] = _text(value, field, limit=limit, required=required)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if kind not in SurveyKind.values:
        errors["kind"] = [f"Choose one of: {', '.join(SurveyKind.values)}."]
    clean["kind"] = kind
    if kind == SurveyKind.SHORT:
        try:
            clean["questions"] = questions_clean(
                questions, previous=survey.question_list() if survey else None
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
    elif questions:
        errors["questions"] = [
            "An NPS survey asks its one question; questions are for short surveys."
        ]
    else:
        clean["questions"] = []
    if key:
        if not isinstance(key, str) or not KEY_RE.match(key):
            errors["key"] = [
                "Use lower-case letters, digits and _ (a letter first, at most 50): "
                "it is the name in {{ surveys.<key>.url }}."
            ]
        elif not _key_free(tenant, key, survey):
            errors["key"] = ["Another survey of the team has this key."]
        clean["key"] = key
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def survey_create(
    *,
    tenant: Tenant,
    name: str,
    kind: str,
    question: str,
    questions: list[dict[str, Any]] | None = None,
    thanks: str = "",
    key: str = "",
    active: bool = True,
) -> Survey:
    """A new survey. `key` (its name in templates) comes from the name when not given."""
    clean = _fields_clean(
        tenant=tenant,
        survey=None,
        name=name,
        kind=kind,
        question=question,
        questions=questions,
        thanks=thanks,
        key=key,
    )
    clean.setdefault("key", _key_from_name(tenant, clean["name"]))
    return Survey.objects.create(tenant=tenant, active=active, **clean)


@transaction.atomic
def survey_update(*, tenant: Tenant, survey: Survey, **changes: Any) -> Survey:
    """Change any of name, question, questions, thanks, key, active. The kind stays: answers
    already given are of that kind."""
    unknown = set(changes) - {"name", "question", "questions", "thanks", "key", "active"}
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    fields = {
        "name": survey.name,
        "question": survey.question,
        "questions": survey.questions if survey.kind == SurveyKind.SHORT else None,
        "thanks": survey.thanks,
        "key": survey.key,
        **{k: v for k, v in changes.items() if k != "active"},
    }
    clean = _fields_clean(tenant=tenant, survey=survey, kind=survey.kind, **fields)
    for field, value in clean.items():
        setattr(survey, field, value)
    if "active" in changes:
        survey.active = bool(changes["active"])
    survey.updated_at = now()
    survey.save()
    return survey


def survey_delete(*, tenant: Tenant, survey: Survey) -> None:
    """The survey and its answers (the `Survey Answered` events stay: they are history)."""
    Survey.objects.filter(tenant=tenant, pk=survey.pk).delete()


# --- answers ---------------------------------------------------------------------------------


def _score(value: Any) -> int:
    # A whole number from 0 to 10; "9" from a form counts, 9.5 and true do not.
    if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ValidationError({"score": ["Choose a score from 0 to 10."]})
    return value


def answer_clean(
    *, survey: Survey, score: Any = None, comment: Any = "", answers: Any = None
) -> tuple[int | None, str, dict[str, Any]]:
    """(score, comment, answers) as stored, or ValidationError naming each bad field
    (`score`, `comment`, `answers`, `answers.<question id>`)."""
    errors: dict[str, list[str]] = {}
    try:
        comment = _text(comment, "comment", limit=MAX_COMMENT, required=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        comment = ""
    if survey.kind == SurveyKind.NPS:
        clean_score: int | None = None
        try:
            clean_score = _score(score)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if answers:
            errors["answers"] = ["An NPS survey takes a score and a comment, no answers."]
        if errors:
            raise ValidationError(errors)
        return clean_score, comment, {}
    if score is not None and score != "":
        errors["score"] = ["A short survey takes answers to its questions, not a score."]
    if answers is None:
        answers = {}
    if not isinstance(answers, Mapping):
        raise ValidationError(
            {"answers": ["Give the answers as an object: {question id: answer}."]}
        )
    questions = {q["id"]: q for q in survey.question_list()}
    clean: dict[str, Any] = {}
    for qid, value in answers.items():
        question = questions.get(qid)
        field = f"answers.{qid}"
        if question is None:
            errors[field] = ["This survey has no such question."]
            continue
        if value is None or value == "":
            continue  # every question may be left out
        if question["type"] == QuestionType.CHOICE:
            if value not in question["choices"]:
                errors[field] = [f"Choose one of: {', '.join(question['choices'])}."]
                continue
        elif question["type"] == QuestionType.SCALE:
            if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
                value = int(value.strip())
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not (SCALE_MIN <= value <= SCALE_MAX)
            ):
                errors[field] = [f"Choose a number from {SCALE_MIN} to {SCALE_MAX}."]
                continue
        else:
            try:
                value = _text(value, field, limit=MAX_TEXT_ANSWER, required=False)
            except ValidationError as exc:
                errors.update(exc.message_dict)
                continue
            if not value:
                continue
        clean[qid] = value
    if not clean and not errors:
        errors["answers"] = ["Answer at least one question."]
    if errors:
        raise ValidationError(errors)
    return None, comment, {q: clean[q] for q in questions if q in clean}


def answer_properties(answer: SurveyAnswer, survey: Survey) -> dict[str, Any]:
    """The `Survey Answered` event's properties (ISSUE16's fixed names)."""
    return {
        "survey": str(survey.public_id),
        "survey_name": survey.name,
        "kind": survey.kind,
        "score": answer.score,
        "comment": answer.comment,
        "answers": answer.answers,
        "channel": answer.channel,
        "send": answer.send,
    }


def answer_record(
    *,
    tenant: Tenant,
    survey: Survey,
    respondent: Respondent,
    channel: str,
    send: str,
    score: Any = None,
    comment: Any = "",
    answers: Any = None,
    context: dict[str, Any] | None = None,
) -> SurveyAnswer:
    """Store one answer and its `Survey Answered` event. Raises ValidationError (bad fields),
    AlreadyAnswered (this respondent answered for this send already)."""
    if survey.tenant_id != tenant.pk:
        raise ValueError("The survey is another tenant's.")
    if channel not in AnswerChannel.values:
        raise ValueError(f"Unknown channel {channel!r}.")
    if not survey.active:
        raise ValidationError({"survey": ["This survey is closed."]})
    keys = respondent.keys()
    if not keys:
        raise ValidationError({"anonymousId": ["Send the visitor's anonymousId or userId."]})
    clean_score, clean_comment, clean_answers = answer_clean(
        survey=survey, score=score, comment=comment, answers=answers
    )
    if SurveyAnswer.objects.filter(
        tenant=tenant, survey=survey, send=send, respondent__in=keys
    ).exists():
        raise AlreadyAnswered
    answer = SurveyAnswer(
        tenant=tenant,
        survey=survey,
        contact=respondent.contact,
        respondent=keys[0],
        send=send,
        channel=channel,
        score=clean_score,
        comment=clean_comment,
        answers=clean_answers,
    )
    properties = answer_properties(answer, survey)
    try:
        with transaction.atomic():
            answer.save(force_insert=True)
            if respondent.contact is not None:
                events_record(
                    tenant=tenant,
                    facts=[
                        Fact(
                            respondent.contact.pk,
                            SURVEY_ANSWERED,
                            f"{survey.public_id}:{send}",
                            SOURCE,
                            properties,
                        )
                    ],
                )
            else:
                visitor_events_accept(
                    tenant=tenant,
                    user_id=respondent.user_id,
                    anonymous_id=respondent.anonymous_id,
                    events=[(SURVEY_ANSWERED, properties)],
                    source=SOURCE,
                    context=context,
                )
    except IntegrityError:
        # Answered at the same moment in another request: the unique constraint decided.
        raise AlreadyAnswered from None
    return answer


def visitor_id_clean(value: Any, field: str) -> str | None:
    """A visitor id from a browser call: text up to audience's limit, or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError({field: [f"{field} must be a string."]})
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError({field: [f"{field} is longer than {MAX_ID_LENGTH} characters."]})
    problem = text_problem(value)
    if problem:
        raise ValidationError({field: [f"{field}: {problem}"]})
    return value.strip() or None


__all__ = [
    "WEB_SEND",
    "AlreadyAnswered",
    "Respondent",
    "answer_clean",
    "answer_record",
    "survey_create",
    "survey_delete",
    "survey_update",
]
