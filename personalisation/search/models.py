"""Product search: a team's synonyms, and what its shoppers searched for (a daily tally per
query, which the insights page reads: top queries, queries that found nothing).

The catalog searched is audience's (audience.models.Product); this app adds the indexes that make
it fast on PostgreSQL (migrations/0002_product_search_indexes.py) and nothing to its table.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.timezone import now

from tenants.models import Tenant

TERM_MAX = 100  # a synonym's term or one of its alternatives
ALTERNATIVES_MAX = 20
QUERY_MAX = 200  # a search query, as typed (longer ones are refused with a 400)


class Synonym(models.Model):
    """When a shopper searches for `term`, the products matching any of `alternatives` are found
    too (one way: "trainers" → ["sneakers"] does not make "sneakers" find trainers). Stored
    normalised: lower case, single spaces (personalisation/search/text.py `normalise`)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    term = models.CharField(max_length=TERM_MAX)
    alternatives = models.JSONField(default=list)  # [str, …], normalised, without `term`
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["term"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "term"], name="search_synonym_tenant_term"),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="search_synonym_tenant_public"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.term} → {', '.join(self.alternatives)}"


class SearchQueryDay(models.Model):
    """How often a (normalised) query was searched on one UTC day, and how many of those found
    nothing. Written by every search a shopper makes (browser or REST), one upsert; the try-it
    box of the insights page does not count."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    query = models.CharField(max_length=QUERY_MAX)
    searches = models.PositiveIntegerField(default=0)
    zero_results = models.PositiveIntegerField(default=0)  # searches that found nothing
    results = models.PositiveBigIntegerField(default=0)  # summed result counts (for the average)
    last_searched_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "query"], name="search_query_day_tenant_day_query"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.query!r} on {self.day}: {self.searches}"


class SearchPosting(models.Model):
    """One word of one product (its name and category, as PostgreSQL's `simple` text search
    parser splits them), with what ranking reads of the product: search's inverted index on
    PostgreSQL (SQLite searches without it).

    Why a table of our own instead of a GIN index over audience_product: under row-level
    security (FORCE, tenants/rls.py) PostgreSQL evaluates only leakproof functions before the
    policy, and neither full-text `@@` nor pg_trgm's operators are leakproof, so the app's role
    never gets a GIN index condition (measured: 536 ms at 100k products instead of 15 ms). A
    btree on (tenant, word) answers `word = …` and prefix ranges (`word >= 'snea' AND word <
    'snea' || U+10FFFF`, C collation) with leakproof comparisons, and, covering the product's
    id, category, price and stock (migrations/0002), ranks every match without reading a
    product row: only the page's products are read.

    `product_id` is not a foreign key: deleting a product must not cost the catalog a cascade;
    postings of a removed product are dropped when the page is read (the join finds no product)
    and go at the next full build (lexicon.py)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    word = models.CharField(max_length=100)  # COLLATE "C" on PostgreSQL (0002)
    product_id = models.BigIntegerField()
    category = models.CharField(max_length=200, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    in_stock = models.BooleanField(default=True)

    class Meta:
        indexes = [
            # The look-up index, (tenant_id, word) INCLUDE (…), is PostgreSQL's (0002).
            models.Index(fields=["tenant", "product_id"], name="search_posting_tenant_product"),
        ]

    def __str__(self) -> str:
        return f"{self.word} → {self.product_id}"


class SearchWordKey(models.Model):
    """A catalog word under each of its one-letter deletions (and itself): the words a typo may
    stand for are those sharing a key with it (SymSpell's deletion neighbourhood, edit distance
    1: "sneekers" and "sneakers" both give "snekers"). Equality on a btree, so usable under
    row-level security, unlike a trigram index (see SearchPosting)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=100)  # COLLATE "C" on PostgreSQL (0002)
    word = models.CharField(max_length=100)  # COLLATE "C" on PostgreSQL (0002)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key", "word"], name="search_word_key_tenant_key_word"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.word}"


class SearchLexiconState(models.Model):
    """How far the team's word list has read its catalog: products updated after
    `products_until` are not in it yet."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    products_until = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="search_lexicon_state_tenant"),
        ]

    def __str__(self) -> str:
        return f"lexicon until {self.products_until}"
