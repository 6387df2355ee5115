"""Matching and ranking products for a query: PostgreSQL full-text search and pg_trgm where the
database is PostgreSQL, a trigram matcher in Python over a LIKE-narrowed candidate set on SQLite.

What matches (both databases): every word of the query, or of a synonym rewrite of it
(text.variants), is found in the product's name or category as the word itself, the start of a
word ("snea" → "sneakers"), or a word one typo away (trigram word similarity ≥ 0.6: "sneekers" →
"sneakers"); or the query is the product's sku.

How results are ordered: relevance (how well the text matched) times the contact's boost,
    score = relevance * (1 + CATEGORY_WEIGHT * category affinity + PRICE_WEIGHT * price fit)
            * (OUT_OF_STOCK_FACTOR if out of stock)
where category affinity is 0..1 (1 for the contact's favourite category) and price fit is
exp(-|ln(price / typical price)|): 1 at their typical price, ½ at twice or half of it
(affinity.py). Equal matches are therefore ordered by the visitor's taste, and a strong
category affinity can lift a typo-match above an exact match of a category they never buy.

PostgreSQL: one statement. The WHERE is `tenant_id = … AND (tsvector @@ prefix tsquery OR query
<% text OR sku = …)`, each arm served by an index of migrations/0002 (GIN over the tsvector,
GIN trigram over the lower-cased text, the unique (tenant, sku)), combined as a BitmapOr; the
score, the total (a window count) and the page are computed over the matches only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q

from audience.models import Product
from personalisation.search import lexicon, text
from personalisation.search.affinity import NONE, Affinity
from tenants.models import Tenant

CATEGORY_WEIGHT = 1.0
PRICE_WEIGHT = 0.3
OUT_OF_STOCK_FACTOR = 0.5
SYNONYM_FACTOR = 0.95  # a match through a synonym, just below the same match as typed
SQLITE_CANDIDATES = 5_000  # rows the SQLite fallback reads and scores at most
RAREST_COUNT_CAP = 2_000  # postings counted per term to find a query's rarest word

# The same expressions as the indexes of migrations/0002 (an index serves only its expression).
SEARCH_VECTOR = "to_tsvector('simple'::regconfig, (p.name || ' ' || p.category))"


@dataclass(frozen=True)
class Hit:
    sku: str
    name: str
    url: str
    image_url: str
    price: Decimal | None
    currency: str
    category: str
    in_stock: bool
    relevance: float
    score: float

    def as_json(self) -> dict[str, Any]:
        """The product shape of every personalisation answer (ISSUE16's contract)."""
        return {
            "sku": self.sku,
            "name": self.name,
            "url": self.url,
            "imageUrl": self.image_url,
            "price": float(self.price) if self.price is not None else None,
            "currency": self.currency,
            "category": self.category,
            "inStock": self.in_stock,
        }


@dataclass(frozen=True)
class Matches:
    total: int
    hits: list[Hit]
    corrected: str | None


def search_products(
    *,
    tenant: Tenant,
    query: str,
    synonyms: Mapping[str, list[str]],
    affinity: Affinity = NONE,
    category: str = "",
    limit: int = 10,
    offset: int = 0,
) -> Matches:
    variants = text.variants(query, synonyms)
    if not variants:
        return Matches(total=0, hits=[], corrected=None)
    if connection.vendor == "postgresql" and lexicon.lexicon_ensure(tenant=tenant):
        total, hits = _postgresql(
            tenant=tenant,
            query=query.strip(),
            variants=variants,
            affinity=affinity,
            category=category,
            limit=limit,
            offset=offset,
        )
    else:
        total, hits = _fallback(
            tenant=tenant,
            query=query.strip(),
            variants=variants,
            affinity=affinity,
            category=category,
            limit=limit,
            offset=offset,
        )
    corrected = text.correction(variants[0].split(), [f"{h.name} {h.category}" for h in hits])
    return Matches(total=total, hits=hits, corrected=corrected)


def _boost(affinity: Affinity, category: str, in_stock: bool, price: Decimal | None) -> float:
    boost = 1 + CATEGORY_WEIGHT * affinity.categories.get(category, 0.0)
    if affinity.price and price is not None and price > 0:
        boost += PRICE_WEIGHT * math.exp(-abs(math.log(float(price) / affinity.price)))
    return boost * (1.0 if in_stock else OUT_OF_STOCK_FACTOR)


# A prefix is the btree range [word, word + the last code point) in the C collation.
PREFIX_END = "\U0010ffff"

# One row per (variant, word of it, term): a term is a range of index words — the word itself
# and every word it starts (`lo`, `hi` = lo + PREFIX_END), or one correction (`hi` = lo + \x01)
# — with what an exact hit and a hit on a longer word score. A product matches a variant when
# each of the variant's words has a hit; its relevance is the mean of the words' best hits,
# the best variant's (or 1 for the sku). Matching, scoring and counting read the covering index
# of the postings only; the products of the page alone are read from audience_product.
SEARCH_SQL = """
WITH terms AS (
    SELECT * FROM unnest(%(v)s::int[], %(i)s::int[], %(lo)s::text[], %(hi)s::text[],
                         %(exact)s::float8[], %(longer)s::float8[], %(n)s::int[])
        AS t(v, i, lo, hi, exact, longer, n)
), counts AS (
    -- How many postings each word's terms have, capped (an index-only count of each range).
    SELECT t.v, t.i, sum(c.postings) AS postings
    FROM terms t
    CROSS JOIN LATERAL (
        SELECT count(*) AS postings FROM (
            SELECT 1 FROM search_searchposting p
            WHERE p.tenant_id = %(tenant)s
              AND p.word >= t.lo COLLATE "C" AND p.word < t.hi COLLATE "C"
            LIMIT {RAREST_COUNT_CAP}
        ) capped
    ) c
    GROUP BY t.v, t.i
), rarest AS (
    SELECT DISTINCT ON (v) v, i FROM counts ORDER BY v, postings, i
), candidates AS (
    -- A product matching a variant has a hit on each of its words, the rarest one included:
    -- the products of each variant's rarest word are the candidates, and only their postings
    -- are read for the other words (through the (tenant_id, product_id) index), instead of
    -- every posting of every word. One index range per term, whatever the planner estimates:
    -- the row-level security policy's condition makes it guess a tiny share of the postings,
    -- and it then joined a scan of all of them against the terms (0.9 s at 400k postings).
    -- OFFSET 0 keeps these subqueries from being flattened into such a join.
    SELECT DISTINCT po.product_id
    FROM terms t JOIN rarest r ON r.v = t.v AND r.i = t.i
    CROSS JOIN LATERAL (
        SELECT p.product_id FROM search_searchposting p
        WHERE p.tenant_id = %(tenant)s AND p.word >= t.lo COLLATE "C" AND p.word < t.hi COLLATE "C"
          AND (%(category)s = '' OR p.category = %(category)s)
        OFFSET 0
    ) po
), word_hits AS (
    SELECT t.v, t.i, c.product_id, max(t.n) AS n,
           max(CASE WHEN po.word = t.lo THEN t.exact ELSE t.longer END) AS best,
           max(po.category) AS category, max(po.price) AS price, bool_or(po.in_stock) AS in_stock
    FROM candidates c
    CROSS JOIN LATERAL (
        SELECT p.word, p.category, p.price, p.in_stock FROM search_searchposting p
        WHERE p.tenant_id = %(tenant)s AND p.product_id = c.product_id
        OFFSET 0
    ) po
    JOIN terms t ON po.word >= t.lo COLLATE "C" AND po.word < t.hi COLLATE "C"
    GROUP BY t.v, t.i, c.product_id
), matched AS (
    SELECT product_id, max(relevance) AS relevance, max(category) AS category,
           max(price) AS price, bool_or(in_stock) AS in_stock
    FROM (
        SELECT product_id, sum(best) / max(n) AS relevance, max(category) AS category,
               max(price) AS price, bool_or(in_stock) AS in_stock
        FROM word_hits GROUP BY v, product_id HAVING count(*) = max(n)
        UNION ALL
        SELECT id, 1.0, category, price, in_stock FROM audience_product
        WHERE tenant_id = %(tenant)s AND sku = %(sku)s
          AND (%(category)s = '' OR category = %(category)s)
    ) hits GROUP BY product_id
), page AS (
    SELECT m.product_id, m.relevance, s.score, count(*) OVER () AS total
    FROM matched m
    CROSS JOIN LATERAL (
        SELECT m.relevance
               * (1 + %(category_weight)s * COALESCE(
                    (SELECT a.weight FROM unnest(%(names)s::text[], %(weights)s::float8[])
                         AS a(category, weight) WHERE a.category = m.category), 0)
                  + %(price_weight)s * CASE WHEN m.price > 0 AND %(price)s::float8 > 0
                        THEN exp(-abs(ln(m.price::float8 / %(price)s::float8))) ELSE 0 END)
               * CASE WHEN m.in_stock THEN 1.0 ELSE %(out_of_stock)s END AS score
    ) s
    ORDER BY s.score DESC, m.product_id
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT p.sku, p.name, p.url, p.image_url, p.price, p.currency, p.category, p.in_stock,
       page.relevance, page.score, page.total
FROM page
JOIN audience_product p ON p.tenant_id = %(tenant)s AND p.id = page.product_id
ORDER BY page.score DESC, page.product_id
""".replace("{RAREST_COUNT_CAP}", str(RAREST_COUNT_CAP))


# Every variant is one word (most queries: "snea", "sneekers", "jacket", a one-word synonym):
# a product's relevance is then its best term's weight (the synonym factor is in the weights),
# so one aggregation per product does; the sku's product scores 1.0 (= text.EXACT, the highest
# relevance) and replaces its word match. The general SEARCH_SQL aggregates twice more and
# scores each match through a subquery: measured 2x the PostgreSQL time for "snea" (11k
# matching postings at 100k products). The affinity weights are a hash join here.
SINGLE_WORD_SQL = """
WITH terms AS (
    SELECT * FROM unnest(%(lo)s::text[], %(hi)s::text[], %(exact)s::float8[], %(longer)s::float8[])
        AS t(lo, hi, exact, longer)
), sku AS (
    SELECT id, category, price, in_stock FROM audience_product
    WHERE tenant_id = %(tenant)s AND sku = %(sku)s
      AND (%(category)s = '' OR category = %(category)s)
), matched AS MATERIALIZED (
    SELECT po.product_id, max(CASE WHEN po.word = t.lo THEN t.exact ELSE t.longer END) AS relevance,
           max(po.category) AS category, max(po.price) AS price, bool_or(po.in_stock) AS in_stock
    FROM terms t
    -- OFFSET 0: one index range per term (see SEARCH_SQL).
    CROSS JOIN LATERAL (
        SELECT p.product_id, p.word, p.category, p.price, p.in_stock
        FROM search_searchposting p
        WHERE p.tenant_id = %(tenant)s AND p.word >= t.lo COLLATE "C" AND p.word < t.hi COLLATE "C"
          AND (%(category)s = '' OR p.category = %(category)s)
        OFFSET 0
    ) po
    WHERE po.product_id <> ALL (SELECT id FROM sku)
    GROUP BY po.product_id
    UNION ALL
    SELECT id, 1.0, category, price, in_stock FROM sku
), affinity AS (
    SELECT * FROM unnest(%(names)s::text[], %(weights)s::float8[]) AS a(category, weight)
), page AS (
    SELECT m.product_id, m.relevance,
           m.relevance
           * (1 + %(category_weight)s * COALESCE(a.weight, 0)
              + %(price_weight)s * CASE WHEN m.price > 0 AND %(price)s::float8 > 0
                    THEN exp(-abs(ln(m.price::float8 / %(price)s::float8))) ELSE 0 END)
           * CASE WHEN m.in_stock THEN 1.0 ELSE %(out_of_stock)s END AS score
    FROM matched m LEFT JOIN affinity a ON a.category = m.category
    ORDER BY score DESC, m.product_id
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT p.sku, p.name, p.url, p.image_url, p.price, p.currency, p.category, p.in_stock,
       page.relevance, page.score, (SELECT count(*) FROM matched) AS total
FROM page
JOIN audience_product p ON p.tenant_id = %(tenant)s AND p.id = page.product_id
ORDER BY page.score DESC, page.product_id
"""


def _postgresql(
    *,
    tenant: Tenant,
    query: str,
    variants: list[str],
    affinity: Affinity,
    category: str,
    limit: int,
    offset: int,
) -> tuple[int, list[Hit]]:
    near = lexicon.corrections(tenant=tenant, query_words=[w for v in variants for w in v.split()])
    terms: dict[str, list[Any]] = {k: [] for k in ("v", "i", "lo", "hi", "exact", "longer", "n")}

    def term(v: int, i: int, n: int, lo: str, hi: str, exact: float, longer: float) -> None:
        for key, value in zip(terms, (v, i, lo, hi, exact, longer, n), strict=True):
            terms[key].append(value)

    for v, variant in enumerate(variants):
        factor = 1.0 if v == 0 else SYNONYM_FACTOR
        variant_words = variant.split()
        for i, word in enumerate(variant_words):
            n = len(variant_words)
            # A prefix from two letters on; one letter is a word of its own ("t" of "t-shirt").
            end = PREFIX_END if len(word) >= 2 else "\x01"
            term(v, i, n, word, word + end, factor * text.EXACT, factor * text.PREFIX)
            for fix, similarity in near.get(word, []):
                weight = factor * similarity * text.TYPO_FACTOR
                term(v, i, n, fix, fix + "\x01", weight, weight)
    params: dict[str, Any] = {
        **terms,
        "tenant": tenant.pk,
        "sku": query,
        "category": category,
        "category_weight": CATEGORY_WEIGHT,
        "names": list(affinity.categories),
        "weights": list(affinity.categories.values()),
        "price_weight": PRICE_WEIGHT,
        "price": affinity.price or 0.0,
        "out_of_stock": OUT_OF_STOCK_FACTOR,
        "limit": limit,
        "offset": offset,
    }
    single_word = all(len(variant.split()) == 1 for variant in variants)
    sql = SINGLE_WORD_SQL if single_word else SEARCH_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows and offset:  # a page past the end: the count came with no row
            cursor.execute(sql, {**params, "offset": 0, "limit": 1})
            first = cursor.fetchall()
            return (first[0][10] if first else 0), []
    total = rows[0][10] if rows else 0
    return total, [_hit(row[:8], float(row[8]), float(row[9])) for row in rows]


def _hit(row: Sequence[Any], relevance: float, score: float) -> Hit:
    sku, name, url, image_url, price, currency, category, in_stock = row
    return Hit(
        sku=sku,
        name=name,
        url=url,
        image_url=image_url,
        price=price,
        currency=currency,
        category=category,
        in_stock=in_stock,
        relevance=relevance,
        score=score,
    )


def _fallback(
    *,
    tenant: Tenant,
    query: str,
    variants: list[str],
    affinity: Affinity,
    category: str,
    limit: int,
    offset: int,
) -> tuple[int, list[Hit]]:
    """SQLite: candidates hold the first two or the last two letters of a query word (the word
    itself when too short to be a typo) in their name or category, or are the sku, at most
    SQLITE_CANDIDATES of them; then matched and scored in Python by the same rules
    (text.text_score)."""
    pieces: set[str] = set()
    for variant in variants:
        for word in variant.split():
            # One edit leaves the first two letters or the last two of a word as typed.
            typo = len(word) >= text.TYPO_MIN_LENGTH
            pieces.update({word[:2], word[-2:]} if typo else {word})
    narrowed = Q(sku=query)
    for piece in pieces:
        narrowed |= Q(name__icontains=piece) | Q(category__icontains=piece)
    rows = Product.objects.filter(tenant=tenant).filter(narrowed)
    if category:
        rows = rows.filter(category=category)
    fields = ("sku", "name", "url", "image_url", "price", "currency", "category", "in_stock")
    candidates = list(rows.values_list(*fields)[:SQLITE_CANDIDATES])
    # As on PostgreSQL, a word the catalog holds as typed is never read as a typo of another.
    vocabulary = {w for row in candidates for w in text.words_all(f"{row[1]} {row[6]}")}
    known = frozenset(w for v in variants for w in v.split() if w in vocabulary)
    hits = []
    for row in candidates:
        product_text = f"{row[1]} {row[6]}"
        relevance = 1.0 if row[0] == query else 0.0
        for index, variant in enumerate(variants):
            factor = 1.0 if index == 0 else SYNONYM_FACTOR
            score = text.text_score(variant.split(), product_text, known=known)
            relevance = max(relevance, factor * score)
        if relevance > 0:
            boost = _boost(affinity, row[6], row[7], row[4])
            hits.append(_hit(row, relevance, relevance * boost))
    hits.sort(key=lambda h: (-h.score, h.name, h.sku))
    return len(hits), hits[offset : offset + limit]
