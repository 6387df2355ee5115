"""Surveys: a team's NPS question (0-10 and an optional "why?") or short survey (1-5 questions:
choice, text, 1-5 scale), and the answers people gave.

An answer is kept once per respondent and *send*: the message (delivery) the link came in for
an email or push link, "web" for the survey embedded in the team's site (the tracker). The
respondent is the contact when Wayfarer knows them; a browser visitor it does not know yet is
their user id or anonymous id, so the same visitor cannot answer twice before their first
tracked call has made them a contact. Every answer is also a `Survey Answered` event on the
contact (personalisation/surveys/services.py), which is what segments, journeys and analytics
read.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils.timezone import now

from audience.models import Contact
from tenants.models import Tenant

SURVEY_ANSWERED = "Survey Answered"  # the event's name (fixed in ISSUE16)
WEB_SEND = "web"  # the send of every answer given in the team's own site
MAX_QUESTIONS = 5
MAX_CHOICES = 10
NPS_PROMOTER = 9  # 9-10 promoters, 7-8 passives, 0-6 detractors (Bain's definition)
NPS_PASSIVE = 7
SCALE_MIN, SCALE_MAX = 1, 5  # a short survey's scale question


class SurveyKind(models.TextChoices):
    NPS = "nps", "NPS (0-10 and why)"
    SHORT = "short", "Short survey (1-5 questions)"


class QuestionType(models.TextChoices):
    CHOICE = "choice", "Choice"
    TEXT = "text", "Text"
    SCALE = "scale", "Scale (1-5)"


class AnswerChannel(models.TextChoices):
    EMAIL = "email", "Email"
    PUSH = "push", "Web push"
    WEB = "web", "Website"


class Survey(models.Model):
    """`questions` (short surveys): [{"id": "q1", "type": "choice"|"text"|"scale", "label": …,
    "choices": [… (choice only)]}]; ids stay with their question when others are edited, so
    results keep adding up. `key` names it in message templates: {{ surveys.<key>.url }}."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=5, choices=SurveyKind.choices)
    question = models.CharField(max_length=300)
    questions = models.JSONField(default=list, blank=True)
    thanks = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="survey_tenant_public"),
            models.UniqueConstraint(fields=["tenant", "key"], name="survey_tenant_key"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_nps(self) -> bool:
        return self.kind == SurveyKind.NPS

    @property
    def thanks_text(self) -> str:
        return self.thanks or "Thank you for your answer."

    def question_list(self) -> list[dict[str, Any]]:
        return self.questions if isinstance(self.questions, list) else []


class SurveyAnswer(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    survey = models.ForeignKey(
        Survey,
        on_delete=models.CASCADE,
        related_name="answers",
        db_index=False,
        db_constraint=False,  # tenants/keys.py installs the (tenant_id, survey_id) key
    )
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,  # erasing a contact erases their answers
        related_name="+",
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
    )
    # The contact's public id, or "user:<id>" / "anon:<id>" for a visitor not yet a contact.
    respondent = models.CharField(max_length=300)
    send = models.CharField(max_length=64)  # the delivery's public id, or "web"
    channel = models.CharField(max_length=5, choices=AnswerChannel.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True)  # NPS only: 0-10
    comment = models.TextField(blank=True)
    answers = models.JSONField(default=dict, blank=True)  # short surveys: {question id: value}
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # "One answer per contact per survey send".
            models.UniqueConstraint(
                fields=["tenant", "survey", "respondent", "send"], name="survey_answer_once"
            ),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="survey_answer_tenant_public"
            ),
        ]
        indexes = [
            # A survey's answers, newest first (the results page, the API list).
            models.Index(fields=["tenant", "survey", "-created_at"], name="survey_answer_recent"),
            models.Index(fields=["tenant", "contact"], name="survey_answer_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}: {self.respondent} ({self.channel})"

    @property
    def nps_class(self) -> str:
        if self.score is None:
            return ""
        if self.score >= NPS_PROMOTER:
            return "promoter"
        return "passive" if self.score >= NPS_PASSIVE else "detractor"
