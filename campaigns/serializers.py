"""REST input and output of campaigns: the campaign with its segments and variants, its
occurrences, the live audience estimate, and each occurrence's progress and results."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Campaign, Occurrence
from campaigns.services import EDITABLE_FIELDS, MAX_VARIANTS
from messaging.models import Category, Channel

MAX_SEGMENTS = 20


# --- input ------------------------------------------------------------------------------------


class CampaignVariantInputSerializer(serializers.Serializer):
    template = serializers.UUIDField(help_text="A template's id, of the campaign's channel.")
    weight = serializers.IntegerField(
        min_value=1,
        max_value=100,
        required=False,
        default=50,
        help_text="Its share of the test group, relative to the other variants' weights.",
    )


class CampaignInputSerializer(serializers.ModelSerializer):
    """A campaign's fields (the model's own checks: choices, lengths, ranges) plus its audience
    and variants by id. Ids are resolved in the key's team by the view (another team's id is
    “No such segment.”); whether the whole is consistent is the service's to say."""

    segments = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=MAX_SEGMENTS,
        required=False,
        help_text="The segments it goes to (their members, once each).",
    )
    exclude_segments = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=MAX_SEGMENTS,
        required=False,
        help_text="Members of these segments receive nothing.",
    )
    variants = CampaignVariantInputSerializer(  # type: ignore[call-arg]  # DRF's, not in stubs
        many=True,
        required=False,
        max_length=MAX_VARIANTS,
        help_text="One to five; keys A, B, C… in this order. With two or more, an A/B/n test.",
    )

    class Meta:
        model = Campaign
        fields = [*EDITABLE_FIELDS, "segments", "exclude_segments", "variants"]
        extra_kwargs = {
            "cron_minute": {"help_text": "With `recurring`: a crontab field in the team's zone."},
            "cron_hour": {"help_text": "With `recurring`."},
            "cron_day_of_week": {"help_text": "With `recurring` (0 is Sunday)."},
            "cron_day_of_month": {"help_text": "With `recurring`."},
            "cron_month_of_year": {"help_text": "With `recurring`."},
            "send_at": {"help_text": "With `at`: when it goes out."},
            "local_date": {"help_text": "With `local`: the day, in each recipient's zone."},
            "local_time": {"help_text": "With `local`: the time, in each recipient's zone."},
            "throttle_per_minute": {
                "help_text": "At most this many messages a minute; null: as fast as the senders go."
            },
        }

    def get_unique_together_validators(self) -> list[Any]:
        return []  # a taken name is the service's to refuse (field "name")


# --- output -----------------------------------------------------------------------------------


class CampaignRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()


class CampaignVariantOutputSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="A, B, C…")
    template = CampaignRefSerializer()
    weight = serializers.IntegerField()


class CampaignOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    segments = serializers.SerializerMethodField()
    exclude_segments = serializers.SerializerMethodField()
    variants = serializers.SerializerMethodField()
    editable = serializers.BooleanField(
        read_only=True, help_text="Draft or scheduled: PATCH may change it."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "state",
            "editable",
            *EDITABLE_FIELDS,
            "segments",
            "exclude_segments",
            "variants",
            "paused_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _segments(self, campaign: Campaign, *, exclude: bool) -> list[dict[str, Any]]:
        # Prefetched by the view: campaign.segments.all() with their segment.
        rows = [cs for cs in campaign.segments.all() if cs.exclude == exclude]
        return list(CampaignRefSerializer([cs.segment for cs in rows], many=True).data)

    @extend_schema_field(CampaignRefSerializer(many=True))
    def get_segments(self, campaign: Campaign) -> list[dict[str, Any]]:
        return self._segments(campaign, exclude=False)

    @extend_schema_field(CampaignRefSerializer(many=True))
    def get_exclude_segments(self, campaign: Campaign) -> list[dict[str, Any]]:
        return self._segments(campaign, exclude=True)

    @extend_schema_field(CampaignVariantOutputSerializer(many=True))
    def get_variants(self, campaign: Campaign) -> list[dict[str, Any]]:
        variants = sorted(campaign.variants.all(), key=lambda v: v.key)
        return list(CampaignVariantOutputSerializer(variants, many=True).data)


class CampaignOccurrenceOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    winner = serializers.SerializerMethodField(help_text="The winning variant's key, or null.")

    class Meta:
        model = Occurrence
        fields = [
            "id",
            "key",
            "state",
            "started_at",
            "finished_at",
            "recipient_count",
            "holdout_count",
            "winner",
            "winner_due_at",
            "results_frozen_at",
        ]
        read_only_fields = fields

    def get_winner(self, occurrence: Occurrence) -> str | None:
        winner = occurrence.winner
        return winner.key if winner is not None else None


# --- the audience -------------------------------------------------------------------------------


class CampaignAudienceInputSerializer(serializers.Serializer):
    """A campaign's audience before it is saved: what the estimate needs."""

    channel = serializers.ChoiceField(choices=Channel.choices)
    category = serializers.ChoiceField(
        choices=Category.choices, required=False, default=Category.MARKETING
    )
    segments = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=MAX_SEGMENTS
    )
    exclude_segments = serializers.ListField(
        child=serializers.UUIDField(), max_length=MAX_SEGMENTS, required=False, default=list
    )


class CampaignAudienceOutputSerializer(serializers.Serializer):
    members = serializers.IntegerField(
        help_text="Contacts in an included segment and in no excluded one."
    )
    reachable = serializers.IntegerField(
        help_text="Of those, the ones a message can reach now: consent, suppression, an "
        "address or a push subscription."
    )
    unreachable = serializers.DictField(
        child=serializers.IntegerField(), help_text="The others, counted by reason."
    )


# --- progress and results -------------------------------------------------------------------------


class CampaignProgressOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Frozen recipients, hold-out included.")
    holdout = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Frozen, not released yet (not due, paused).")
    queued = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="By reason.")
    failed = serializers.IntegerField()
    percent_done = serializers.FloatField()


class CampaignLinkClicksSerializer(serializers.Serializer):
    url = serializers.CharField()
    unique = serializers.IntegerField(help_text="Contacts who clicked it.")
    total = serializers.IntegerField(help_text="Clicks.")


class CampaignResultRowSerializer(serializers.Serializer):
    """One row of results: a variant, the hold-out, or every variant together. Rates are
    fractions (0-1), null when there is nothing to divide by."""

    key = serializers.CharField(help_text="A, B, C…, `holdout` or `total`.")
    label = serializers.CharField()  # type: ignore[assignment]
    template = serializers.CharField(help_text="The variant's template's name.")
    recipients = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField(help_text="Sent less bounces.")
    bounces = serializers.IntegerField()
    opens = serializers.IntegerField(help_text="Contacts who opened (a push: who clicked).")
    clicks = serializers.IntegerField(help_text="Contacts who clicked.")
    unsubscribes = serializers.IntegerField()
    conversions = serializers.IntegerField(help_text="Contacts with the goal event in the window.")
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=True)
    links = CampaignLinkClicksSerializer(
        many=True, help_text="Clicks per link, most clicked first."
    )
    winner = serializers.BooleanField(help_text="The A/B test's winner.")
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    click_to_open_rate = serializers.FloatField(allow_null=True)
    bounce_rate = serializers.FloatField(allow_null=True)
    unsubscribe_rate = serializers.FloatField(allow_null=True, help_text="Of delivered.")
    conversion_rate = serializers.FloatField(
        allow_null=True, help_text="Of sent (the hold-out: of its recipients)."
    )
    revenue_per_recipient = serializers.DecimalField(
        max_digits=16, decimal_places=2, coerce_to_string=True, allow_null=True
    )
    lift = serializers.FloatField(
        allow_null=True,
        help_text="Conversion rate over the hold-out's, relative (0.25: +25 %); null without "
        "a hold-out or when it converted nobody.",
    )
    lift_points = serializers.FloatField(
        allow_null=True, help_text="The same difference in percentage points."
    )


class CampaignSeriesPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="The hour's or day's start.")
    opens = serializers.IntegerField()
    clicks = serializers.IntegerField()
    conversions = serializers.IntegerField()


class CampaignSeriesSerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    points = CampaignSeriesPointSerializer(many=True)


class CampaignStatsOutputSerializer(serializers.Serializer):
    occurrence = CampaignOccurrenceOutputSerializer(
        allow_null=True, help_text="The sending counted: the latest, or `?occurrence=`."
    )
    progress = CampaignProgressOutputSerializer(allow_null=True)
    variants = CampaignResultRowSerializer(many=True, help_text="One row per variant, by key.")
    holdout = CampaignResultRowSerializer(allow_null=True, help_text="null: no hold-out was kept.")
    total = CampaignResultRowSerializer(allow_null=True, help_text="Every variant together.")
    waiting_for_winner = serializers.IntegerField(
        help_text="Recipients of the test's rest, waiting for the winner."
    )
    series = CampaignSeriesSerializer(
        allow_null=True, help_text="Opens, clicks and conversions over time."
    )
    goal_event = serializers.CharField(allow_blank=True)
    goal_window_hours = serializers.IntegerField()
    results_frozen_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the results were kept (they are read from that copy since); null: "
        "counted from the events now.",
    )
    results_final = serializers.BooleanField(
        help_text="Kept after the goal window ended: they no longer change. False while counted "
        "live, or when kept earlier (before data retention removed their events)."
    )
