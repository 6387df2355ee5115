"""Per-campaign results: every campaign that has sent, with its latest send's figures, exactly as
the campaign's own results page shows them (campaigns.selectors.campaign_results: the copy kept
on the send once final, else counted from the events).

    campaign_result_rows(*, tenant, sort="-sent_at") -> list[CampaignResultRow]
    SORTS                                          the sort keys a list may be ordered by

Two queries for the campaigns and their latest sends, plus, for each send whose results are not
kept yet (still sending, or inside its goal window: a handful at any time), the campaign page's
own count of it. A finished send's results are kept by the campaigns tick once its goal window
has passed, so the list costs the same however many campaigns a team has sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, OuterRef, Subquery

from campaigns import selectors as campaign_selectors
from campaigns.models import Campaign, Occurrence
from tenants.models import Tenant


@dataclass(frozen=True)
class CampaignResultRow:
    campaign: Campaign
    occurrence: Occurrence  # the latest send
    sends: int  # how many times the campaign has sent
    results: campaign_selectors.Results | None

    @property
    def sent_at(self) -> datetime:
        return self.occurrence.started_at

    @property
    def audience(self) -> int:
        """Everyone the send was frozen for: every variant's recipients, the hold-out and those
        waiting for an A/B test's winner (the send's own count before results exist)."""
        if self.results is None:
            return self.occurrence.recipient_count
        r = self.results
        return r.total.recipients + (r.holdout.recipients if r.holdout else 0) + r.waiting

    def _total(self, name: str) -> int:
        return getattr(self.results.total, name) if self.results else 0

    @property
    def sent(self) -> int:
        return self._total("sent")

    @property
    def delivered(self) -> int:
        return self._total("delivered")

    @property
    def opens(self) -> int:
        return self._total("opens")

    @property
    def clicks(self) -> int:
        return self._total("clicks")

    @property
    def unsubscribes(self) -> int:
        return self._total("unsubscribes")

    @property
    def bounces(self) -> int:
        return self._total("bounces")

    @property
    def conversions(self) -> int:
        return self._total("conversions")

    @property
    def revenue(self) -> Decimal:
        return self.results.total.revenue if self.results else Decimal("0.00")

    @property
    def open_rate(self) -> float | None:
        return self.results.total.open_rate if self.results else None

    @property
    def click_rate(self) -> float | None:
        return self.results.total.click_rate if self.results else None

    @property
    def unsubscribe_rate(self) -> float | None:
        return self.results.total.unsubscribe_rate if self.results else None

    @property
    def bounce_rate(self) -> float | None:
        return self.results.total.bounce_rate if self.results else None

    @property
    def conversion_rate(self) -> float | None:
        return self.results.total.conversion_rate if self.results else None

    # The rates as the table shows them: "12.3 %", or "—" without a denominator.
    @property
    def open_pct(self) -> str:
        return percent(self.open_rate)

    @property
    def click_pct(self) -> str:
        return percent(self.click_rate)

    @property
    def unsubscribe_pct(self) -> str:
        return percent(self.unsubscribe_rate)

    @property
    def bounce_pct(self) -> str:
        return percent(self.bounce_rate)


def percent(rate: float | None) -> str:
    """A rate (0-1) as the pages show it: "12.3 %"; None (nothing to divide by) as "—"."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


# key -> column heading; "-key" sorts descending. The rates are the campaign page's own (of the
# messages sent), which the headings say: the Messages dashboard's are of those delivered.
SORTS: dict[str, str] = {
    "name": "Campaign",
    "sent_at": "Last sent",
    "audience": "Audience",
    "sent": "Sent",
    "delivered": "Delivered",
    "open_rate": "Open rate (of sent)",
    "click_rate": "Click rate (of sent)",
    "unsubscribe_rate": "Unsubscribe rate (of sent)",
    "bounce_rate": "Bounce rate (of sent)",
    "conversions": "Conversions",
    "revenue": "Revenue",
}
DEFAULT_SORT = "-sent_at"


def sort_clean(value: str) -> str:
    """A known sort ("open_rate", "-revenue", …), else the default."""
    return value if value.removeprefix("-") in SORTS else DEFAULT_SORT


def _sort_key(row: CampaignResultRow, key: str) -> tuple[int, object]:
    if key == "name":
        return (0, row.campaign.name.casefold())
    value = getattr(row, key)
    return (0, value) if value is not None else (1, 0)  # "—" (no rate) after every number


def campaign_result_rows(
    *, tenant: Tenant, sort: str = DEFAULT_SORT, campaign_ids: Iterable[int] | None = None
) -> list[CampaignResultRow]:
    """Every campaign of `tenant` that has sent (of `campaign_ids`, when given), with its latest
    send's results, by `sort`."""
    sort = sort_clean(sort)
    latest = (
        Occurrence.objects.filter(tenant=tenant, campaign=OuterRef("pk"))
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    chosen = Campaign.objects.filter(tenant=tenant)
    if campaign_ids is not None:
        chosen = chosen.filter(pk__in=list(campaign_ids))
    campaigns = list(
        chosen.annotate(latest_id=Subquery(latest), sends=Count("occurrences"))
        .filter(sends__gt=0)
        .order_by()
    )
    occurrences = {
        o.pk: o
        for o in Occurrence.objects.filter(
            tenant=tenant,
            pk__in=[c.latest_id for c in campaigns],
        )
    }
    rows = []
    for campaign in campaigns:
        occurrence = occurrences.get(campaign.latest_id)
        if occurrence is None:  # deleted between the two queries
            continue
        # The team and the campaign are known: counting a send asks for neither again.
        campaign.tenant = tenant
        occurrence.campaign = campaign
        results = campaign_selectors.campaign_results(
            campaign=campaign, occurrence=occurrence, detail=False
        )
        rows.append(
            CampaignResultRow(
                campaign=campaign,
                occurrence=occurrence,
                sends=campaign.sends,
                results=results,
            )
        )
    key = sort.removeprefix("-")
    descending = sort.startswith("-")
    # None last either way: sort the numbers, then append the rows without one.
    with_value = [r for r in rows if _sort_key(r, key)[0] == 0]
    without = [r for r in rows if _sort_key(r, key)[0] == 1]
    with_value.sort(key=lambda r: _sort_key(r, key)[1], reverse=descending)  # type: ignore[arg-type,return-value]
    without.sort(key=lambda r: r.campaign.name.casefold())
    return with_value + without
