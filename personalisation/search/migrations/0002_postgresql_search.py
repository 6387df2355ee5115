"""PostgreSQL only (nothing on SQLite, which searches without these):

- pg_trgm, whose `similarity()` orders the words a typo may stand for. It is a *trusted*
  extension (PostgreSQL 13+): the database's owner creates it without being a superuser, as the
  app's role `wayfarer` is (checked on PostgreSQL 15.20 here).
- The words of the inverted index in the C collation: byte order, so that a prefix is one
  btree range (`word >= 'snea' AND word < 'snea' || U+10FFFF`) whatever the database's locale.
- The inverted index's look-up index: (tenant_id, word) covering product_id, category, price
  and in_stock, so that matching and ranking read the index only (an index-only scan).
- An index (tenant_id, updated_at) over audience_product: the index refresh asks for the
  newest product change before every search and reads only the products changed since
  (lexicon.py). CONCURRENTLY, since shops keep updating their catalog meanwhile (so this
  migration is not atomic).

No GIN index over audience_product: under FORCE row-level security the app's role could not use
it (search/models.py, SearchPosting, says why and what was measured).
Backwards drops the index and leaves the extension (harmless; others may come to use it).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

UPDATED_INDEX = "search_product_tenant_updated_idx"
LOOKUP_INDEX = "search_posting_tenant_word_cover"
C_COLUMNS = [
    ("search_searchposting", "word"),
    ("search_searchwordkey", "key"),
    ("search_searchwordkey", "word"),
]


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in C_COLUMNS:
        schema_editor.execute(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(100) COLLATE "C"'
        )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {LOOKUP_INDEX} ON search_searchposting (tenant_id, word)"
        " INCLUDE (product_id, category, price, in_stock)"
    )
    # An interrupted concurrent build leaves an invalid index behind: build it again.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND c.relnamespace = to_regnamespace(current_schema())",
            [UPDATED_INDEX],
        )
        row = cursor.fetchone()
    if row is not None and row[0]:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {UPDATED_INDEX}")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {UPDATED_INDEX}"
        " ON audience_product (tenant_id, updated_at)"
    )


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {UPDATED_INDEX}")
    schema_editor.execute(f"DROP INDEX IF EXISTS {LOOKUP_INDEX}")
    for table, column in C_COLUMNS:
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(100)")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("search", "0001_synonyms_queries_postings"),
        ("audience", "0015_lifecycle_stages"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
