"""Search's index of the catalog on PostgreSQL: the words of every product (SearchPosting) and
the typo keys of every word (SearchWordKey); models.py says why these are tables of our own.

Kept current without a hook in the catalog: before each search one query compares the newest
product change (`max(updated_at)`, an index read) with how far the index has read; when products
changed since, only those are read again (their postings replaced, their new words' keys added),
inside one transaction under a per-team advisory lock (a concurrent search goes on with the
index as it was). The first search of a team builds it whole: measured at 100k products here,
see docs/personalisation/search.md.

Words come from PostgreSQL's own text search parser (`to_tsvector('simple', name || ' ' ||
category)`: lower-cased, no stemming, no stop words, which suits product names in any language).

Cost of a whole build, measured here at 100k products (400k postings) on a loaded 2-core
machine: 40 s, most of it the inserts (row-level security's check, the deferred tenant key and
three indexes per row). Hence builds of more than INLINE_PRODUCTS products run in a task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection, transaction

from personalisation.search import text
from tenants.models import Tenant

# A product written by a transaction that started before the index last read the catalog but
# committed after it carries an `updated_at` older than the index's mark: the products of this
# window before the mark are read again each time.
OVERLAP = timedelta(minutes=1)
INLINE_PRODUCTS = 1_000  # changed products a search brings into the index itself
LOCK_NAMESPACE = 16_002  # pg_advisory_xact_lock(namespace, tenant id): one refresh per team

CHANGED = "SELECT id FROM audience_product WHERE tenant_id = %s AND updated_at > %s"
POSTINGS_INSERT = """
    INSERT INTO search_searchposting (tenant_id, word, product_id, category, price, in_stock)
    SELECT p.tenant_id, left(w.lexeme, 100), p.id, p.category, p.price, p.in_stock
    FROM audience_product p
    CROSS JOIN LATERAL unnest(to_tsvector('simple'::regconfig, (p.name || ' ' || p.category))) w
    WHERE p.tenant_id = %s AND p.updated_at > %s
"""
# Each new word of at least text.TYPO_MIN_LENGTH letters under itself and its one-letter
# deletions.
KEYS_INSERT = """
    INSERT INTO search_searchwordkey (tenant_id, key, word)
    SELECT DISTINCT %s::bigint, k.key, w.word
    FROM (SELECT DISTINCT word FROM search_searchposting
          WHERE tenant_id = %s AND product_id IN ({changed})
            AND char_length(word) >= %s) w
    CROSS JOIN LATERAL (
        SELECT w.word AS key
        UNION
        SELECT overlay(w.word PLACING '' FROM i FOR 1)
        FROM generate_series(1, char_length(w.word)) i
    ) k
    ON CONFLICT DO NOTHING
"""


def lexicon_ensure(*, tenant: Tenant) -> bool:
    """Bring the index up to the catalog when that is quick; True when the index can answer.

    One query when nothing changed. Up to INLINE_PRODUCTS changed products are read now (a
    concurrent refresh of the team is not waited for); more (a first build, a catalog import)
    are left to a background task (tasks.search_index_refresh), and until the team's index
    exists at all its searches are answered by the scan of engine._fallback."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT max(updated_at) FROM audience_product WHERE tenant_id = %s),"
            " (SELECT products_until FROM search_searchlexiconstate WHERE tenant_id = %s)",
            [tenant.pk, tenant.pk],
        )
        newest, until = cursor.fetchone() or (None, None)
        if newest is None or (until is not None and newest <= until):
            return until is not None
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM audience_product WHERE tenant_id = %s"
            " AND updated_at > %s LIMIT %s) changed",
            [tenant.pk, until - OVERLAP if until else "-infinity", INLINE_PRODUCTS + 1],
        )
        changed = cursor.fetchone()[0]
    if changed <= INLINE_PRODUCTS:
        lexicon_refresh(tenant=tenant, wait=False)
        return True
    from personalisation.search.tasks import search_index_refresh

    transaction.on_commit(lambda: search_index_refresh.delay(tenant.pk))
    return until is not None


def lexicon_refresh(*, tenant: Tenant, wait: bool = True, full: bool = False) -> bool:
    """Read the products changed since the index's mark (all of them when `full` or never
    read). With `wait=False`, gives up (False) while another refresh of the team runs."""
    with transaction.atomic(), connection.cursor() as cursor:
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        cursor.execute(f"SELECT {lock}(%s, %s::int)", [LOCK_NAMESPACE, tenant.pk])
        if not wait and not cursor.fetchone()[0]:
            return False
        cursor.execute(
            "SELECT (SELECT max(updated_at) FROM audience_product WHERE tenant_id = %s),"
            " (SELECT products_until FROM search_searchlexiconstate WHERE tenant_id = %s)",
            [tenant.pk, tenant.pk],
        )
        newest, until = cursor.fetchone() or (None, None)
        if newest is None:
            return False
        if full or until is None:
            since = "-infinity"
            cursor.execute("DELETE FROM search_searchposting WHERE tenant_id = %s", [tenant.pk])
            cursor.execute("DELETE FROM search_searchwordkey WHERE tenant_id = %s", [tenant.pk])
        else:
            since = until - OVERLAP
            cursor.execute(
                f"DELETE FROM search_searchposting WHERE tenant_id = %s AND product_id IN"
                f" ({CHANGED})",
                [tenant.pk, tenant.pk, since],
            )
        cursor.execute(POSTINGS_INSERT, [tenant.pk, since])
        cursor.execute(
            KEYS_INSERT.format(changed=CHANGED),
            [tenant.pk, tenant.pk, tenant.pk, since, text.TYPO_MIN_LENGTH],
        )
        cursor.execute(
            "INSERT INTO search_searchlexiconstate (tenant_id, products_until, rebuilt_at)"
            " VALUES (%s, %s, now()) ON CONFLICT (tenant_id) DO UPDATE"
            " SET products_until = EXCLUDED.products_until,"
            " rebuilt_at = CASE WHEN %s THEN now()"
            "   ELSE search_searchlexiconstate.rebuilt_at END",
            [tenant.pk, newest, full or until is None],
        )
        big = full or until is None or _changed(cursor, tenant, since) > INLINE_PRODUCTS
        if big:
            # Fresh statistics for the next search's plan: without them the planner still sees
            # the empty table and joins every posting of the team (measured: 6.6 s at 646k).
            cursor.execute("ANALYZE search_searchposting, search_searchwordkey")
    if big and not connection.in_atomic_block:
        # And the visibility map, for index-only scans without heap fetches (VACUUM cannot
        # run in a transaction: the task's call gets it, a test's or a caller's atomic not).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) search_searchposting")
    return True


def _changed(cursor: Any, tenant: Tenant, since: object) -> int:
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM audience_product WHERE tenant_id = %s"
        " AND updated_at > %s LIMIT %s) changed",
        [tenant.pk, since, INLINE_PRODUCTS + 1],
    )
    return int(cursor.fetchone()[0])


def corrections(*, tenant: Tenant, query_words: list[str]) -> dict[str, list[tuple[str, float]]]:
    """For each query word that is no catalog word: the catalog words one edit away (a letter
    wrong, missing, extra, or two swapped), the most similar first (pg_trgm's similarity), at
    most text.MAX_CORRECTIONS, at or above text.TYPO_THRESHOLD."""
    pairs = [
        (word, key)
        for word in sorted({w for w in query_words if len(w) >= text.TYPO_MIN_LENGTH})
        for key in text.typo_keys(word)
    ]
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT q.w, k.word, similarity(k.word, q.w)"
            " FROM unnest(%s::text[], %s::text[]) AS q(w, key)"
            " JOIN search_searchwordkey k ON k.tenant_id = %s AND k.key = q.key",
            [[w for w, _k in pairs], [k for _w, k in pairs], tenant.pk],
        )
        rows = cursor.fetchall()
    near: dict[str, list[tuple[str, float]]] = {}
    known: set[str] = set()
    for query_word, word, similarity in rows:
        if word == query_word:
            known.add(query_word)
        elif similarity >= text.TYPO_THRESHOLD:
            near.setdefault(query_word, []).append((word, float(similarity)))
    return {
        w: sorted(found, key=lambda f: (-f[1], f[0]))[: text.MAX_CORRECTIONS]
        for w, found in near.items()
        if w not in known
    }
