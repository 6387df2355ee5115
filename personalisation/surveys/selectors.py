"""Surveys' reads: the gatekeeper, lists, and the results a marketer reads (NPS, distribution,
comments, per channel, over time; per question for short surveys)."""

from __future__ import annotations

import uuid
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils.timezone import now

from personalisation.surveys.models import (
    NPS_PASSIVE,
    NPS_PROMOTER,
    SCALE_MAX,
    SCALE_MIN,
    AnswerChannel,
    QuestionType,
    Survey,
    SurveyAnswer,
    SurveyKind,
)
from tenants.models import Tenant

COMMENTS_SHOWN = 50
SHORT_READ = 10_000  # short surveys' per-question figures read at most the newest this many
TEXT_SHOWN = 20


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def survey_get(*, tenant: Tenant, public_id: object) -> Survey:
    """The tenant's survey with this id; 404 for another tenant's, a missing or a malformed id."""
    key = _uuid(public_id)
    found = Survey.objects.filter(tenant=tenant, public_id=key).first() if key else None
    if found is None:
        raise Http404("No such survey.")
    return found


def survey_for_tracker(*, tenant: Tenant, public_id: object) -> Survey | None:
    """The tenant's survey with this id, or None (the browser edge answers 404 itself)."""
    key = _uuid(public_id)
    return Survey.objects.filter(tenant=tenant, public_id=key).first() if key else None


def survey_list(*, tenant: Tenant) -> QuerySet[Survey]:
    """The team's surveys, newest first, each with `answer_count`."""
    return Survey.objects.filter(tenant=tenant).annotate(answer_count=Count("answers"))


def surveys_for_links(*, tenant: Tenant) -> list[tuple[str, uuid.UUID]]:
    """(key, public id) of the team's open surveys: what a message's links can name."""
    return list(Survey.objects.filter(tenant=tenant, active=True).values_list("key", "public_id"))


def answer_list(*, tenant: Tenant, survey: Survey) -> QuerySet[SurveyAnswer]:
    return SurveyAnswer.objects.filter(tenant=tenant, survey=survey).select_related("contact")


def answer_exists(*, tenant: Tenant, survey: Survey, send: str, respondents: list[str]) -> bool:
    if not respondents:
        return False
    return SurveyAnswer.objects.filter(
        tenant=tenant, survey=survey, send=send, respondent__in=respondents
    ).exists()


def nps(promoters: int, detractors: int, total: int) -> int | None:
    """Net Promoter Score: % promoters - % detractors, rounded; None without answers."""
    if not total:
        return None
    return round(100 * (promoters - detractors) / total)


@dataclass
class NpsFigures:
    total: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    def add(self, score: int, n: int) -> None:
        self.total += n
        if score >= NPS_PROMOTER:
            self.promoters += n
        elif score >= NPS_PASSIVE:
            self.passives += n
        else:
            self.detractors += n

    @property
    def score(self) -> int | None:
        return nps(self.promoters, self.detractors, self.total)

    def share(self, part: int) -> int:
        return round(100 * part / self.total) if self.total else 0

    @property
    def promoter_share(self) -> int:
        return self.share(self.promoters)

    @property
    def passive_share(self) -> int:
        return self.share(self.passives)

    @property
    def detractor_share(self) -> int:
        return self.share(self.detractors)


@dataclass
class QuestionFigures:
    question: dict[str, Any]
    answered: int = 0
    counts: list[tuple[str, int, int]] = field(default_factory=list)  # (value, n, % of answered)
    average: float | None = None
    texts: list[str] = field(default_factory=list)


@dataclass
class Results:
    survey: Survey
    days: int | None
    total: int = 0
    overall: NpsFigures = field(default_factory=NpsFigures)
    distribution: list[tuple[int, int, int]] = field(default_factory=list)  # (score, n, % of max)
    channels: list[tuple[str, str, NpsFigures]] = field(default_factory=list)
    weeks: list[tuple[date, NpsFigures]] = field(default_factory=list)
    comments: list[SurveyAnswer] = field(default_factory=list)
    questions: list[QuestionFigures] = field(default_factory=list)
    truncated: bool = False


def _zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def survey_results(*, tenant: Tenant, survey: Survey, days: int | None = 90) -> Results:
    """The survey's figures over the last `days` (None: all time). A handful of grouped
    queries, whatever the number of answers."""
    answers = SurveyAnswer.objects.filter(tenant=tenant, survey=survey)
    if days is not None:
        answers = answers.filter(created_at__gte=now() - timedelta(days=days))
    results = Results(survey=survey, days=days)
    zone = _zone(tenant)
    if survey.is_nps:
        by_channel: dict[str, NpsFigures] = {}
        counts: Counter[int] = Counter()
        for channel, score, n in (
            answers.values_list("channel", "score").annotate(n=Count("id")).order_by()
        ):
            if score is None:
                continue
            counts[score] += n
            results.overall.add(score, n)
            by_channel.setdefault(channel, NpsFigures()).add(score, n)
        results.total = results.overall.total
        top = max(counts.values(), default=0)
        results.distribution = [
            (s, counts[s], round(100 * counts[s] / top) if top else 0) for s in range(11)
        ]
        labels = dict(AnswerChannel.choices)
        results.channels = [
            (c, labels[c], by_channel[c]) for c in AnswerChannel.values if c in by_channel
        ]
        weeks: dict[date, NpsFigures] = {}
        for day, score, n in (
            answers.annotate(day=TruncDate("created_at", tzinfo=zone))
            .values_list("day", "score")
            .annotate(n=Count("id"))
            .order_by()
        ):
            if score is None:
                continue
            monday = day - timedelta(days=day.weekday())
            weeks.setdefault(monday, NpsFigures()).add(score, n)
        results.weeks = sorted(weeks.items())
        results.comments = list(
            answers.exclude(comment="")
            .select_related("contact")
            .order_by("-created_at")[:COMMENTS_SHOWN]
        )
        return results
    results.total = answers.count()
    rows = list(answers.order_by("-created_at").values_list("answers", flat=True)[:SHORT_READ])
    results.truncated = results.total > len(rows)
    for question in survey.question_list():
        figures = QuestionFigures(question=question)
        values = [r.get(question["id"]) for r in rows if isinstance(r, dict)]
        values = [v for v in values if v not in (None, "")]
        figures.answered = len(values)
        if question["type"] == QuestionType.CHOICE:
            tally = Counter(values)
            figures.counts = [
                (c, tally[c], round(100 * tally[c] / len(values)) if values else 0)
                for c in question["choices"]
            ]
        elif question["type"] == QuestionType.SCALE:
            numbers = [v for v in values if isinstance(v, int)]
            tally = Counter(numbers)
            figures.counts = [
                (str(s), tally[s], round(100 * tally[s] / len(numbers)) if numbers else 0)
                for s in range(SCALE_MIN, SCALE_MAX + 1)
            ]
            figures.average = round(sum(numbers) / len(numbers), 1) if numbers else None
        else:
            figures.texts = [str(v) for v in values[:TEXT_SHOWN]]
        results.questions.append(figures)
    results.comments = list(
        answers.exclude(comment="")
        .select_related("contact")
        .order_by("-created_at")[:COMMENTS_SHOWN]
    )
    return results


def week_label(monday: date) -> str:
    return f"{monday:%d %b}"


def local_date(when: datetime, tenant: Tenant) -> date:
    return when.astimezone(_zone(tenant)).date()


def demo_survey_id(*, tenant: Tenant) -> str | None:
    """The team's newest active NPS survey, which the demo shop's home page embeds."""
    newest = (
        Survey.objects.filter(tenant=tenant, kind=SurveyKind.NPS, active=True)
        .order_by("-created_at", "-pk")
        .values_list("public_id", flat=True)
        .first()
    )
    return str(newest) if newest else None
