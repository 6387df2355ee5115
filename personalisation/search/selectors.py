"""Product search's reads: synonyms (with the gatekeeper that answers 404 for another team's),
the map a search expands its query with, and the insights page's query figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Max, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.timezone import now

from audience.models import Contact
from audience.selectors import contact_for_visitor
from personalisation.search.models import SearchQueryDay, Synonym
from tenants.models import Tenant


def synonym_list(*, tenant: Tenant) -> list[Synonym]:
    return list(Synonym.objects.filter(tenant=tenant).order_by("term"))


def synonym_get(*, tenant: Tenant, public_id: uuid.UUID | str) -> Synonym:
    """The team's synonym, or 404 (another team's id and a malformed one alike)."""
    try:
        wanted = uuid.UUID(str(public_id))
    except ValueError:
        raise Http404("No such synonym.") from None
    return get_object_or_404(Synonym, tenant=tenant, public_id=wanted)


def synonyms_map(*, tenant: Tenant) -> dict[str, list[str]]:
    """{term: alternatives}: what a search expands its query with."""
    return dict(Synonym.objects.filter(tenant=tenant).values_list("term", "alternatives"))


def search_contact(
    *,
    tenant: Tenant,
    contact_id: uuid.UUID | str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> Contact | None:
    """The contact a search is personalised for: named by public id (REST), else the visitor's
    user id or anonymous id. None for an unknown one (another team's id included)."""
    if contact_id:
        return Contact.objects.filter(tenant=tenant, public_id=contact_id).first()
    return contact_for_visitor(tenant=tenant, user_id=user_id, anonymous_id=anonymous_id)


@dataclass(frozen=True)
class QueryFigure:
    query: str
    searches: int
    zero_results: int
    results: int
    last_searched_at: datetime

    @property
    def average_results(self) -> float:
        return self.results / self.searches if self.searches else 0.0


def _since(days: int) -> date:
    return (now() - timedelta(days=days - 1)).date()


def query_figures(
    *, tenant: Tenant, days: int, zero_only: bool = False, limit: int = 20
) -> list[QueryFigure]:
    """The most searched queries of the last `days` UTC days (today included), with how many
    of their searches found nothing; `zero_only`: only the queries that found nothing at least
    once, the most often first."""
    rows = (
        SearchQueryDay.objects.filter(tenant=tenant, day__gte=_since(days))
        .values("query")
        .annotate(
            searches_sum=Sum("searches"),
            zero_sum=Sum("zero_results"),
            results_sum=Sum("results"),
            last=Max("last_searched_at"),
        )
    )
    if zero_only:
        rows = rows.filter(zero_sum__gt=0).order_by("-zero_sum", "-last", "query")
    else:
        rows = rows.order_by("-searches_sum", "query")
    return [
        QueryFigure(
            query=row["query"],
            searches=row["searches_sum"],
            zero_results=row["zero_sum"],
            results=row["results_sum"],
            last_searched_at=row["last"],
        )
        for row in rows[:limit]
    ]


def search_totals(*, tenant: Tenant, days: int) -> dict[str, int]:
    totals = SearchQueryDay.objects.filter(tenant=tenant, day__gte=_since(days)).aggregate(
        searches=Sum("searches"), zero=Sum("zero_results")
    )
    return {"searches": totals["searches"] or 0, "zero": totals["zero"] or 0}
