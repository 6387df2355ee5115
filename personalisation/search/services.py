"""Product search's writes: the team's synonyms, and a shopper's search (matched, ranked for
them, counted for the insights page and recorded as a `Products Searched` event)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.timezone import now

from audience.models import Contact
from audience.services import Fact, events_record, visitor_events_accept
from personalisation.search import text
from personalisation.search.affinity import NONE, Affinity, affinity_for_contact
from personalisation.search.engine import Hit, search_products
from personalisation.search.models import (
    ALTERNATIVES_MAX,
    QUERY_MAX,
    TERM_MAX,
    SearchQueryDay,
    Synonym,
)
from personalisation.search.selectors import synonyms_map
from tenants.models import Tenant

PRODUCTS_SEARCHED = "Products Searched"  # Segment's e-commerce spec name (ISSUE16's fixed name)
SOURCE = "search"


def _synonym_clean(term: str, alternatives: list[str]) -> tuple[str, list[str]]:
    errors: dict[str, list[str]] = {}
    term = text.normalise(term or "")
    if not term or not text.words(term):
        errors["term"] = ["Enter the word or words shoppers type."]
    elif len(term) > TERM_MAX:
        errors["term"] = [f"At most {TERM_MAX} characters."]
    cleaned: list[str] = []
    for alternative in alternatives:
        alternative = text.normalise(alternative or "")
        if alternative and alternative != term and alternative not in cleaned:
            cleaned.append(alternative)
    if not cleaned:
        errors["alternatives"] = ["Enter at least one other word to search for (not the term)."]
    elif len(cleaned) > ALTERNATIVES_MAX:
        errors["alternatives"] = [f"At most {ALTERNATIVES_MAX} alternatives."]
    elif any(len(a) > TERM_MAX or not text.words(a) for a in cleaned):
        errors["alternatives"] = [f"Each alternative needs a letter or digit, {TERM_MAX} at most."]
    if errors:
        raise ValidationError(errors)
    return term, cleaned


@transaction.atomic
def synonyms_set(*, tenant: Tenant, term: str, alternatives: list[str]) -> Synonym:
    """Make a search for `term` also find `alternatives` (replacing the term's alternatives if
    it has some). Raises ValidationError naming `term` or `alternatives`."""
    term, cleaned = _synonym_clean(term, alternatives)
    synonym, _created = Synonym.objects.select_for_update().get_or_create(
        tenant=tenant, term=term, defaults={"alternatives": cleaned}
    )
    if synonym.alternatives != cleaned:
        synonym.alternatives = cleaned
        synonym.updated_at = now()
        synonym.save(update_fields=["alternatives", "updated_at"])
    return synonym


@transaction.atomic
def synonym_update(*, synonym: Synonym, term: str, alternatives: list[str]) -> Synonym:
    """Change a synonym's term and alternatives; another synonym's term is refused."""
    term, cleaned = _synonym_clean(term, alternatives)
    taken = (
        Synonym.objects.filter(tenant_id=synonym.tenant_id, term=term)
        .exclude(pk=synonym.pk)
        .exists()
    )
    if taken:
        raise ValidationError({"term": ["Another synonym has this term: change that one."]})
    synonym.term, synonym.alternatives, synonym.updated_at = term, cleaned, now()
    synonym.save(update_fields=["term", "alternatives", "updated_at"])
    return synonym


def synonym_delete(*, synonym: Synonym) -> None:
    synonym.delete()


@dataclass(frozen=True)
class SearchAnswer:
    search_id: uuid.UUID
    query: str
    corrected: str | None
    total: int
    hits: list[Hit]
    affinity: Affinity

    def as_json(self) -> dict[str, object]:
        """The answer of GET /v1/search and /api/v1/search/ (ISSUE16's contract)."""
        return {
            "searchId": str(self.search_id),
            "query": self.query,
            "corrected": self.corrected,
            "total": self.total,
            "products": [hit.as_json() for hit in self.hits],
        }


def search_run(
    *,
    tenant: Tenant,
    query: str,
    limit: int = 10,
    offset: int = 0,
    category: str = "",
    contact: Contact | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    record: bool = True,
) -> SearchAnswer:
    """Search the team's catalog for a shopper, ranked by their affinity (`contact`: the
    visitor's, found by the caller). With `record`, the search is counted for the insights page
    and recorded as `Products Searched` on the visitor (through the ingestion inbox for a
    browser visitor, at once for a contact named by the REST API); the marketer's try-it box
    passes record=False."""
    query = query.strip()[:QUERY_MAX]
    affinity = affinity_for_contact(tenant=tenant, contact=contact) if contact else NONE
    found = search_products(
        tenant=tenant,
        query=query,
        synonyms=synonyms_map(tenant=tenant),
        affinity=affinity,
        category=category,
        limit=limit,
        offset=offset,
    )
    answer = SearchAnswer(
        search_id=uuid.uuid4(),
        query=query,
        corrected=found.corrected,
        total=found.total,
        hits=found.hits,
        affinity=affinity,
    )
    if record:
        if offset == 0:  # the next pages of one search are not more searches
            _query_count(tenant=tenant, query=query, total=found.total)
        _event_record(
            tenant=tenant,
            answer=answer,
            contact=contact,
            user_id=user_id,
            anonymous_id=anonymous_id,
        )
    return answer


def _query_count(*, tenant: Tenant, query: str, total: int) -> None:
    """One upsert into the day's tally of this query (both databases have ON CONFLICT)."""
    stamp = now()
    table = SearchQueryDay._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, day, query, searches, zero_results, results,"
            " last_searched_at) VALUES (%s, %s, %s, 1, %s, %s, %s)"
            " ON CONFLICT (tenant_id, day, query) DO UPDATE SET"
            f" searches = {table}.searches + 1,"
            f" zero_results = {table}.zero_results + EXCLUDED.zero_results,"
            f" results = {table}.results + EXCLUDED.results,"
            " last_searched_at = EXCLUDED.last_searched_at",
            [tenant.pk, stamp.date(), text.normalise(query), int(total == 0), total, stamp],
        )


def _event_record(
    *,
    tenant: Tenant,
    answer: SearchAnswer,
    contact: Contact | None,
    user_id: str | None,
    anonymous_id: str | None,
) -> None:
    properties: dict[str, object] = {
        "query": answer.query,
        "result_count": answer.total,
        "search_id": str(answer.search_id),
    }
    if answer.corrected:
        properties["corrected"] = answer.corrected
    if user_id or anonymous_id:
        visitor_events_accept(
            tenant=tenant,
            user_id=user_id,
            anonymous_id=anonymous_id,
            events=[(PRODUCTS_SEARCHED, properties)],
            source=SOURCE,
        )
    elif contact is not None:
        events_record(
            tenant=tenant,
            facts=[
                Fact(
                    contact_id=contact.pk,
                    name=PRODUCTS_SEARCHED,
                    key=str(answer.search_id),
                    source=SOURCE,
                    properties=properties,
                )
            ],
        )
