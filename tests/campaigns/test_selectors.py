"""Campaign reads: the gatekeepers, the live audience count and a send's progress."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404

from audience.models import Consent
from campaigns import selectors
from campaigns.models import Campaign, CampaignSegment
from messaging.models import (
    Category,
    Channel,
    Delivery,
    PushSubscription,
    SendingPolicy,
    Suppression,
)
from segments.models import Segment, SegmentMembership
from tests.campaigns.test_results import (
    T0,
    campaign_make,
    contact_make,
    occurrence_make,
    recipient_make,
)

# --- Gatekeepers ------------------------------------------------------------------------------


def test_campaign_get_finds_the_tenants_own_campaign(world: Any) -> None:
    campaign = campaign_make(world.acme)

    assert selectors.campaign_get(tenant=world.acme, public_id=campaign.public_id) == campaign
    assert selectors.campaign_get(tenant=world.acme, public_id=str(campaign.public_id)) == campaign


@pytest.mark.parametrize(
    "public_id", ["not-a-uuid", "", "0b1c9a52-6a0e-4c39-9d1e-2f8a3c5d7e10", None, 42]
)
def test_campaign_get_404s_on_unknown_or_malformed_ids(world: Any, public_id: object) -> None:
    campaign_make(world.acme)

    with pytest.raises(Http404):
        selectors.campaign_get(tenant=world.acme, public_id=public_id)


def test_campaign_get_404s_on_another_tenants_campaign(world: Any) -> None:
    theirs = campaign_make(world.globex)

    with pytest.raises(Http404):
        selectors.campaign_get(tenant=world.acme, public_id=theirs.public_id)


def test_campaign_list_is_the_tenants_newest_first_and_filters_by_state(world: Any) -> None:
    first = campaign_make(world.acme)
    second = campaign_make(world.acme)
    Campaign.objects.filter(pk=second.pk).update(state=Campaign.State.DRAFT)
    campaign_make(world.globex)
    occurrence_make(first)

    listed = list(selectors.campaign_list(tenant=world.acme))
    drafts = list(selectors.campaign_list(tenant=world.acme, state="draft"))

    assert listed == [second, first]
    assert [c.last_started_at for c in listed] == [None, T0]
    assert drafts == [second]
    assert list(selectors.campaign_list(tenant=world.acme, state="nonsense")) == []


def test_occurrence_get_404s_for_another_campaigns_send(world: Any) -> None:
    campaign, other = campaign_make(world.acme), campaign_make(world.acme)
    occ = occurrence_make(campaign)
    theirs = occurrence_make(campaign_make(world.globex))

    assert selectors.occurrence_get(campaign=campaign, public_id=occ.public_id) == occ
    for bad in (occ.public_id, theirs.public_id, "garbage"):
        with pytest.raises(Http404):
            selectors.occurrence_get(campaign=other, public_id=bad)


def test_occurrence_latest_is_the_last_started(world: Any) -> None:
    from datetime import timedelta

    campaign = campaign_make(world.acme)
    assert selectors.occurrence_latest(campaign=campaign) is None
    occurrence_make(campaign, at=T0, key="a")
    newest = occurrence_make(campaign, at=T0 + timedelta(days=7), key="b")
    occurrence_make(campaign, at=T0 - timedelta(days=7), key="c")

    assert selectors.occurrence_latest(campaign=campaign) == newest


def test_campaign_results_refuse_another_campaigns_occurrence(world: Any) -> None:
    campaign, other = campaign_make(world.acme), campaign_make(world.acme)
    occ = occurrence_make(other)

    with pytest.raises(Http404):
        selectors.campaign_results(campaign=campaign, occurrence=occ)


# --- The audience estimate --------------------------------------------------------------------


def segment_make(tenant: Any, name: str, contacts: list[Any]) -> Segment:
    segment = Segment.objects.create(tenant=tenant, name=name, rules={"all": []})
    SegmentMembership.objects.bulk_create(
        SegmentMembership(tenant=tenant, segment=segment, contact=c) for c in contacts
    )
    return segment


def test_the_audience_is_any_included_segment_less_the_excluded(world: Any) -> None:
    ann, ben, cat, dan, eve = (contact_make(world.acme) for _ in range(5))
    vips = segment_make(world.acme, "VIPs", [ann, ben])
    buyers = segment_make(world.acme, "Buyers", [ben, cat, dan])  # ben in both: once
    staff = segment_make(world.acme, "Staff", [dan, eve])  # eve is in no included segment

    estimate = selectors.audience_estimate(
        tenant=world.acme,
        channel=Channel.EMAIL,
        category=Category.MARKETING,
        segments=[vips, buyers],
        exclude_segments=[staff],
    )

    assert (estimate.members, estimate.reachable, estimate.unreachable) == (3, 3, {})


def test_another_tenants_segment_adds_and_removes_no_one(world: Any) -> None:
    ours = contact_make(world.acme)
    segment = segment_make(world.acme, "Ours", [ours])
    theirs = segment_make(world.globex, "Theirs", [contact_make(world.globex)])
    # Memberships are the tenant's: another tenant's segment id names nobody here, even with
    # a row that crosses teams. The database refuses such a row at commit (tenants/keys.py);
    # within this transaction it is there, and goes before the commit's check.
    crossed = SegmentMembership.objects.create(tenant=world.globex, segment=theirs, contact=ours)

    included = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.EMAIL, segments=[theirs]
    )
    excluded = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.EMAIL, segments=[segment], exclude_segments=[theirs]
    )
    crossed.delete()

    assert (included.members, excluded.members) == (0, 1)


def test_the_audience_without_segments_is_empty(world: Any) -> None:
    contact_make(world.acme)

    estimate = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.EMAIL, segments=[], exclude_segments=[]
    )

    assert (estimate.members, estimate.reachable) == (0, 0)


def test_unreachable_contacts_are_counted_by_reason(world: Any) -> None:
    fine = contact_make(world.acme)
    unsubscribed = contact_make(world.acme, email_consent=Consent.REVOKED)
    suppressed = contact_make(world.acme, email="Bounced@Example.com")
    Suppression.objects.create(tenant=world.acme, address="bounced@example.com", reason="bounced")
    no_address = contact_make(world.acme, email="")
    # Suppressed and unsubscribed: counted once, under the first reason the sender would give.
    both = contact_make(world.acme, email="both@example.com", email_consent=Consent.REVOKED)
    Suppression.objects.create(tenant=world.acme, address="both@example.com", reason="bounced")
    # Another tenant's suppression of the same address does not count here.
    globex_only = contact_make(world.acme, email="x@example.com")
    Suppression.objects.create(tenant=world.globex, address="x@example.com", reason="bounced")
    everyone = [fine, unsubscribed, suppressed, no_address, both, globex_only]
    segment = segment_make(world.acme, "All", everyone)

    estimate = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.EMAIL, segments=[segment], exclude_segments=[]
    )
    transactional = selectors.audience_estimate(
        tenant=world.acme,
        channel=Channel.EMAIL,
        category=Category.TRANSACTIONAL,
        segments=[segment],
    )

    assert (estimate.members, estimate.reachable) == (6, 2)
    assert estimate.unreachable == {
        "unsubscribed": 1,
        "address suppressed (bounce or complaint)": 2,
        "no email address": 1,
    }
    assert (transactional.reachable, sum(transactional.unreachable.values())) == (3, 3)


def test_an_opt_in_policy_leaves_out_contacts_who_never_opted_in(world: Any) -> None:
    SendingPolicy.objects.update_or_create(tenant=world.acme, defaults={"require_opt_in": True})
    granted = contact_make(world.acme, email_consent=Consent.GRANTED)
    unknown = contact_make(world.acme)
    segment = segment_make(world.acme, "All", [granted, unknown])

    estimate = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.EMAIL, segments=[segment]
    )

    assert (estimate.reachable, estimate.unreachable) == (1, {"no opt-in": 1})


def test_push_needs_an_active_subscription(world: Any) -> None:
    subscribed, lapsed, never = (contact_make(world.acme) for _ in range(3))
    for n, (contact, active) in enumerate([(subscribed, True), (lapsed, False)]):
        PushSubscription.objects.create(
            tenant=world.acme,
            contact=contact,
            endpoint=f"https://push.example/{n}",
            p256dh="k",
            auth="a",
            active=active,
        )
    segment = segment_make(world.acme, "All", [subscribed, lapsed, never])

    estimate = selectors.audience_estimate(
        tenant=world.acme, channel=Channel.PUSH, segments=[segment]
    )

    assert (estimate.reachable, estimate.unreachable) == (1, {"no active push subscription": 2})


def test_the_campaigns_estimate_reads_its_segments_in_one_query(
    world: Any, django_assert_num_queries: Any
) -> None:
    contacts = [contact_make(world.acme) for _ in range(4)]
    contacts[0].email_consent = Consent.REVOKED
    contacts[0].save(update_fields=["email_consent"])
    included = segment_make(world.acme, "In", contacts)
    excluded = segment_make(world.acme, "Out", contacts[3:])
    campaign = campaign_make(world.acme)
    CampaignSegment.objects.create(tenant=world.acme, campaign=campaign, segment=included)
    CampaignSegment.objects.create(
        tenant=world.acme, campaign=campaign, segment=excluded, exclude=True
    )
    campaign = Campaign.objects.select_related("tenant").get(pk=campaign.pk)

    with django_assert_num_queries(2):  # its segments, then the count
        estimate = selectors.campaign_audience_estimate(campaign=campaign)

    assert (estimate.members, estimate.reachable, estimate.unreachable) == (
        3,
        2,
        {"unsubscribed": 1},
    )


# --- Progress ---------------------------------------------------------------------------------


def test_progress_counts_each_recipient_where_it_stands(
    world: Any, django_assert_num_queries: Any
) -> None:
    campaign = campaign_make(world.acme, holdout_percent=10)
    occ = occurrence_make(campaign)
    S = Delivery.Status
    for status, reason, n in [
        (S.SENT, "", 5),
        (S.QUEUED, "quiet hours", 2),
        (S.SENDING, "", 1),
        (S.FAILED, "550 mailbox unavailable", 1),
        (S.SKIPPED, "unsubscribed", 3),
        (S.SKIPPED, "no email address", 1),
    ]:
        for _ in range(n):
            recipient_make(occ, "A", status=status, reason=reason)
    for _ in range(4):
        recipient_make(occ, "B", released=False)
    for _ in range(2):
        recipient_make(occ, None, holdout=True)
    recipient_make(
        contact=contact_make(world.globex), occurrence=occurrence_make(campaign_make(world.globex))
    )

    with django_assert_num_queries(2):
        progress = selectors.occurrence_progress(occurrence=occ)

    assert (progress.total, progress.holdout, progress.waiting) == (19, 2, 4)
    assert (progress.queued, progress.sending, progress.sent, progress.failed) == (2, 1, 5, 1)
    assert progress.skipped == {"unsubscribed": 3, "no email address": 1}
    assert progress.skipped_total == 4
    assert progress.percent_done == pytest.approx(round(100 * 10 / 17, 1))


def test_a_released_recipient_whose_message_was_deleted_is_not_queued_forever(
    world: Any,
) -> None:
    occ = occurrence_make(campaign_make(world.acme))
    sent, gone = recipient_make(occ, "A"), recipient_make(occ, "A")
    assert gone.delivery is not None
    gone.delivery.delete()

    progress = selectors.occurrence_progress(occurrence=occ)

    assert (progress.sent, progress.queued, progress.percent_done) == (1, 0, 100.0)
    assert progress.skipped == {selectors.MESSAGE_GONE: 1}
    assert sent.pk


def test_progress_of_an_empty_send_is_done(world: Any) -> None:
    occ = occurrence_make(campaign_make(world.acme))

    progress = selectors.occurrence_progress(occurrence=occ)

    assert (progress.total, progress.sent, progress.percent_done) == (0, 0, 100.0)


def test_the_list_counts_each_campaigns_recipients_less_the_hold_out(world: Any) -> None:
    from campaigns.models import Occurrence

    sent, draft = campaign_make(world.acme), campaign_make(world.acme)
    for key, total, held in (("2026-12-01T09:00Z", 100, 10), ("2026-12-08T09:00Z", 50, 5)):
        Occurrence.objects.create(
            tenant=world.acme, campaign=sent, key=key, recipient_count=total, holdout_count=held
        )

    listed = {c.pk: c.recipients for c in selectors.campaign_list(tenant=world.acme)}

    assert listed == {sent.pk: 135, draft.pk: None}  # None: not sent yet (the list shows "—")
