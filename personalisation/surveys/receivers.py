"""Surveys follow audience's facts about contacts (connected in SurveysConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Value, When
from django.dispatch import receiver

from audience.signals import contacts_merged
from personalisation.surveys.models import SurveyAnswer


@receiver(contacts_merged, dispatch_uid="surveys.contacts_merged")
def answers_follow_the_surviving_contact(
    sender: Any, *, tenant: Any, merged: dict[int, int], **_: Any
) -> None:
    """A visitor who answered a survey turned out to be a known customer: the answer moves to
    them, instead of going with the absorbed contact (deleted right after this signal). The
    respondent and send stay, so "one answer per survey send" still holds."""
    if not merged:
        return
    target = Case(*(When(contact_id=pk, then=Value(to)) for pk, to in merged.items()))
    SurveyAnswer.objects.filter(tenant=tenant, contact_id__in=list(merged)).update(
        contact_id=target
    )
