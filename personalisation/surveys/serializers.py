"""REST input and output of surveys and their answers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from personalisation.surveys.models import QuestionType, Survey, SurveyAnswer, SurveyKind


class QuestionSerializer(serializers.Serializer):
    id = serializers.CharField(
        required=False, help_text="Kept from the survey's question (q1…); new ones get the next."
    )
    type = serializers.ChoiceField(choices=QuestionType.choices)
    label = serializers.CharField(max_length=200)  # type: ignore[assignment]  # DRF pops declared fields
    choices = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        help_text="2 to 10 choices (type choice only).",
    )


class SurveyInputSerializer(serializers.Serializer):
    """A survey's fields. Whether they hold together (questions for short surveys only, their
    choices) is the service's to say: a 400 naming the field."""

    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=SurveyKind.choices)
    question = serializers.CharField(
        max_length=300, help_text="NPS: the 0-10 question. Short survey: its introduction."
    )
    questions = QuestionSerializer(
        many=True, required=False, help_text="Short surveys: 1 to 5 questions."
    )
    thanks = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    key = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        default="",
        help_text="Its name in message templates ({{ surveys.<key>.url }}); from the name when "
        "left out.",
    )
    active = serializers.BooleanField(required=False, default=True)


class SurveyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    question = serializers.CharField(max_length=300, required=False)
    questions = QuestionSerializer(many=True, required=False)
    thanks = serializers.CharField(max_length=300, required=False, allow_blank=True)
    key = serializers.CharField(max_length=50, required=False)
    active = serializers.BooleanField(required=False)


class SurveyOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    questions = serializers.SerializerMethodField()
    answer_count = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = [
            "id",
            "key",
            "name",
            "kind",
            "question",
            "questions",
            "thanks",
            "active",
            "answer_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(QuestionSerializer(many=True))
    def get_questions(self, survey: Survey) -> list[dict[str, Any]]:
        return survey.question_list()

    def get_answer_count(self, survey: Survey) -> int:
        count = getattr(survey, "answer_count", None)
        return int(count) if count is not None else survey.answers.count()


class SurveyResultsSerializer(serializers.Serializer):
    answers = serializers.IntegerField()
    nps = serializers.IntegerField(
        allow_null=True, help_text="% promoters (9-10) minus % detractors (0-6); NPS surveys only."
    )
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()


class SurveyDetailOutputSerializer(SurveyOutputSerializer):
    results = serializers.SerializerMethodField()

    class Meta(SurveyOutputSerializer.Meta):
        fields = [*SurveyOutputSerializer.Meta.fields, "results"]
        read_only_fields = fields

    @extend_schema_field(SurveyResultsSerializer)
    def get_results(self, survey: Survey) -> dict[str, Any]:
        results = self.context["results"]
        return {
            "answers": results.total,
            "nps": results.overall.score,
            "promoters": results.overall.promoters,
            "passives": results.overall.passives,
            "detractors": results.overall.detractors,
        }


class SurveyAnswerOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact = serializers.SerializerMethodField(help_text="The contact's id; null: a visitor.")

    class Meta:
        model = SurveyAnswer
        fields = ["id", "contact", "channel", "send", "score", "comment", "answers", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_contact(self, answer: SurveyAnswer) -> str | None:
        return str(answer.contact.public_id) if answer.contact is not None else None
