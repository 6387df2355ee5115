"""Reads for campaigns, including the gatekeepers that 404 on other tenants' campaigns.

campaign_list(*, tenant, state="") -> QuerySet[Campaign]      newest first, with last_started_at
campaign_get(*, tenant, public_id) -> Campaign                THE gatekeeper (Http404 otherwise)
occurrence_get(*, campaign, public_id) -> Occurrence          Http404 for another campaign's
occurrence_latest(*, campaign) -> Occurrence | None
audience_contacts(*, tenant, segments, exclude_segments) -> QuerySet[Contact]
audience_estimate(*, tenant, channel, category, segments, exclude_segments) -> AudienceEstimate
campaign_audience_estimate(*, campaign) -> AudienceEstimate   one aggregate query each
occurrence_progress(*, occurrence) -> Progress                two queries
campaign_results(*, campaign, occurrence=None) -> Results | None   (campaigns/results.py):
                                                              the kept copy, else counted
variant_metric_stats(*, occurrence) -> {variant key: VariantStats}  what the winner step reads
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.http import Http404

from audience.models import Consent, Contact
from campaigns import results
from campaigns.models import Campaign, CampaignSegment, Occurrence, Recipient
from core.ids import uuid_or_404
from messaging import selectors as messaging_selectors
from messaging.models import Category, Channel, Delivery
from segments.models import Segment, SegmentMembership
from tenants.models import Tenant

Results = results.Results
VariantStats = results.VariantStats


def campaign_list(*, tenant: Tenant, state: str = "") -> QuerySet[Campaign]:
    """The tenant's campaigns, newest first; `last_started_at`: their latest occurrence's start
    (None before the first send). `state` narrows to one Campaign.State (unknown: none)."""
    qs = Campaign.objects.filter(tenant=tenant)
    if state:
        qs = qs.filter(state=state)
    # Recipients: everyone its sends were frozen for, less the hold-out (read off the
    # occurrences' counts, so the list costs the same however large the sends were).
    recipients = (
        Occurrence.objects.filter(campaign=OuterRef("pk"))
        .order_by()
        .values("campaign")
        .annotate(n=Sum(F("recipient_count") - F("holdout_count")))
        .values("n")
    )
    return qs.annotate(
        last_started_at=Max("occurrences__started_at"),
        recipients=Subquery(recipients, output_field=IntegerField()),
    ).order_by("-created_at")


def campaign_get(*, tenant: Tenant, public_id: object) -> Campaign:
    found = Campaign.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="campaign")
    ).first()
    if found is None:
        raise Http404("No such campaign")
    return found


def occurrence_get(*, campaign: Campaign, public_id: object) -> Occurrence:
    found = Occurrence.objects.filter(
        tenant_id=campaign.tenant_id,
        campaign=campaign,
        public_id=uuid_or_404(public_id, what="send"),
    ).first()
    if found is None:
        raise Http404("No such send")
    return found


def occurrence_latest(*, campaign: Campaign) -> Occurrence | None:
    return (
        Occurrence.objects.filter(tenant_id=campaign.tenant_id, campaign=campaign)
        .order_by("-started_at", "-pk")
        .first()
    )


# --- The audience -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AudienceEstimate:
    members: int  # in any included segment and in no excluded one
    reachable: int  # of those, reachable on the channel now
    unreachable: dict[str, int] = field(default_factory=dict)  # reason -> count (non-zero only)


def _segment_ids(segments: Iterable[Segment | int]) -> list[int]:
    return [s if isinstance(s, int) else s.pk for s in segments]


def audience_contacts(
    *,
    tenant: Tenant,
    segments: Iterable[Segment | int],
    exclude_segments: Iterable[Segment | int] = (),
) -> QuerySet[Contact]:
    """The tenant's contacts in any of `segments` and in none of `exclude_segments` (their
    current members): two semi-joins on the memberships, no list of ids."""
    included, excluded = _segment_ids(segments), _segment_ids(exclude_segments)
    if not included:
        return Contact.objects.none()
    memberships = SegmentMembership.objects.filter(tenant=tenant, contact=OuterRef("pk"))
    qs = Contact.objects.filter(tenant=tenant).filter(
        Exists(memberships.filter(segment_id__in=included))
    )
    if excluded:
        qs = qs.filter(~Exists(memberships.filter(segment_id__in=excluded)))
    return qs


def audience_estimate(
    *,
    tenant: Tenant,
    channel: str,
    category: str = Category.MARKETING,
    segments: Iterable[Segment | int],
    exclude_segments: Iterable[Segment | int] = (),
) -> AudienceEstimate:
    """How many the campaign would go to, and why the others could not be reached: one
    aggregate query. Reachability is messaging's one definition (`reachable_q`); each
    unreachable contact counts under the first reason the sender would record (no address or
    subscription, then suppression, then consent)."""
    members = audience_contacts(tenant=tenant, segments=segments, exclude_segments=exclude_segments)
    reachable = messaging_selectors.reachable_filter(
        tenant=tenant, channel=channel, category=category
    )
    # The address (or subscription) alone: transactional messages ignore consent.
    addressable = messaging_selectors.reachable_filter(
        tenant=tenant, channel=channel, category=Category.TRANSACTIONAL
    )
    consent_field = f"{channel}_consent"
    counts: dict[str, Count] = {
        "members": Count("pk"),
        "reachable": Count("pk", filter=reachable),
        "unsubscribed": Count(
            "pk", filter=addressable & ~reachable & Q(**{consent_field: Consent.REVOKED})
        ),
        "no_opt_in": Count(
            "pk", filter=addressable & ~reachable & ~Q(**{consent_field: Consent.REVOKED})
        ),
    }
    if channel == Channel.EMAIL:
        counts["no_address"] = Count("pk", filter=Q(email=""))
        counts["suppressed"] = Count("pk", filter=~Q(email="") & ~addressable)
    else:
        counts["no_address"] = Count("pk", filter=~addressable)
    found = members.aggregate(**counts)
    named = messaging_selectors.unreachable_reasons()
    reasons = {
        "no_address": named["no_email"] if channel == Channel.EMAIL else named["no_push"],
        "suppressed": named["suppressed"],
        "unsubscribed": named["unsubscribed"],
        "no_opt_in": named["no_opt_in"],
    }
    return AudienceEstimate(
        members=found["members"],
        reachable=found["reachable"],
        unreachable={reasons[k]: found[k] for k in reasons if found.get(k)},
    )


def campaign_audience_estimate(*, campaign: Campaign) -> AudienceEstimate:
    rows = list(
        CampaignSegment.objects.filter(tenant_id=campaign.tenant_id, campaign=campaign).values_list(
            "segment_id", "exclude"
        )
    )
    return audience_estimate(
        tenant=campaign.tenant,
        channel=campaign.channel,
        category=campaign.category,
        segments=[s for s, exclude in rows if not exclude],
        exclude_segments=[s for s, exclude in rows if exclude],
    )


# --- Progress ---------------------------------------------------------------------------------


MESSAGE_GONE = "message deleted from the outbox"


@dataclass(frozen=True)
class Progress:
    total: int  # frozen recipients, hold-out included
    holdout: int  # receive nothing by design
    waiting: int  # frozen, not yet released (due later, paused, or waiting for the winner)
    queued: int  # released: in the outbox, not yet claimed by a sender
    sending: int
    sent: int
    skipped: dict[str, int]  # reason -> count
    failed: int
    percent_done: float  # sent + skipped + failed of those to send (hold-out aside), 0-100

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def to_send(self) -> int:
        return self.total - self.holdout


def occurrence_progress(*, occurrence: Occurrence) -> Progress:
    """Where an occurrence's recipients stand, from the recipients and their outbox rows: two
    queries however many recipients."""
    recipients = Recipient.objects.filter(tenant_id=occurrence.tenant_id, occurrence=occurrence)
    status = "delivery__status"
    released = Q(holdout=False, released=True)
    # Aggregate names differ from the fields they count (Django refuses `holdout=Count(…holdout…)`).
    found = recipients.aggregate(
        n_total=Count("pk"),
        n_holdout=Count("pk", filter=Q(holdout=True)),
        n_waiting=Count("pk", filter=Q(holdout=False, released=False)),
        n_queued=Count("pk", filter=released & Q(**{status: Delivery.Status.QUEUED})),
        # Released and its outbox row made in one transaction: no row means it was deleted.
        n_gone=Count("pk", filter=released & Q(delivery__isnull=True)),
        n_sending=Count("pk", filter=released & Q(**{status: Delivery.Status.SENDING})),
        n_sent=Count("pk", filter=released & Q(**{status: Delivery.Status.SENT})),
        n_failed=Count("pk", filter=released & Q(**{status: Delivery.Status.FAILED})),
    )
    found = {k.removeprefix("n_"): v for k, v in found.items()}
    skipped_rows = (
        recipients.filter(released, **{status: Delivery.Status.SKIPPED})
        .values_list("delivery__reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    skipped = {reason or "skipped": n for reason, n in skipped_rows}
    if found["gone"]:
        skipped[MESSAGE_GONE] = skipped.get(MESSAGE_GONE, 0) + found["gone"]
    to_send = found["total"] - found["holdout"]
    done = found["sent"] + found["failed"] + sum(skipped.values())
    return Progress(
        total=found["total"],
        holdout=found["holdout"],
        waiting=found["waiting"],
        queued=found["queued"],
        sending=found["sending"],
        sent=found["sent"],
        skipped=dict(sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
        failed=found["failed"],
        percent_done=round(100 * done / to_send, 1) if to_send else 100.0,
    )


# --- Results ----------------------------------------------------------------------------------


def campaign_results(
    *, campaign: Campaign, occurrence: Occurrence | None = None, detail: bool = True
) -> results.Results | None:
    """The results of `occurrence` (default: the latest), or None before the first send: the
    copy kept on it once final (or before retention removed its events), else counted now
    (`detail=False`: without the clicks per link and the chart, for lists)."""
    if occurrence is None:
        occurrence = occurrence_latest(campaign=campaign)
    elif occurrence.campaign_id != campaign.pk:
        raise Http404("No such send")
    if occurrence is None:
        return None
    kept = results.results_kept(occurrence=occurrence)
    if kept is not None:
        return kept
    return results.results_compute(campaign=campaign, occurrence=occurrence, detail=detail)


def variant_metric_stats(*, occurrence: Occurrence) -> dict[str, results.VariantStats]:
    return results.variant_metric_stats(occurrence=occurrence)
