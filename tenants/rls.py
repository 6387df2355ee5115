"""Row-level security on every tenant-owned table (PostgreSQL; core/rls.py says how the scope is
set and why).

A table is tenant-owned when its model has a `tenant` relation to Tenant: the same rule as the
tenancy lint's. After every `migrate` (post_migrate, so a table added by any app's later
migration is covered without anyone remembering to), each such table gets, if it lacks them:

    ALTER TABLE … ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY  (FORCE: the owner too)
    CREATE POLICY wayfarer_tenant_v1 … USING (<visible>) WITH CHECK (<visible>)

Nothing is sent for a table that already has them, so a routine `migrate` takes no table locks.
To change the policy, add a `_v2` here: the old version is dropped when the new one is created.
`tests/tenants/test_rls.py` proves every tenant-owned model is covered.

RLS never applies to a superuser or a BYPASSRLS role, FORCE or not: the app must connect as an
ordinary role (docs/operations.md, "The database role"); `/healthz` warns otherwise.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import connection
from django.db.models import Model

from core.rls import SCOPE_SETTING, SYSTEM_SCOPE_VALUE, TENANT_SETTING

POLICY = "wayfarer_tenant_v1"
VISIBLE = (
    f"current_setting('{SCOPE_SETTING}', true) = '{SYSTEM_SCOPE_VALUE}'"
    f" OR tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::bigint"
)


def tenant_owned_models() -> list[type[Model]]:
    """Every concrete model whose rows belong to one tenant (a `tenant` relation to Tenant)."""
    from tenants.models import Tenant

    owned = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        field = next((f for f in meta.concrete_fields if f.name == "tenant"), None)
        if field is not None and field.related_model is Tenant:
            owned.append(model)
    return owned


def table_states() -> dict[str, dict[str, Any]]:
    """{table: {"enabled", "forced", "policies"}} for every tenant-owned table that exists."""
    tables = [m._meta.db_table for m in tenant_owned_models()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " COALESCE(array_agg(p.polname) FILTER (WHERE p.polname IS NOT NULL), '{}')"
            " FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid"
            # 'p': a partitioned table (audience_event), whose policy governs every query
            # made through it.
            " WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p')"
            " AND c.relnamespace = to_regnamespace(current_schema())"
            " GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity",
            [tables],
        )
        return {
            name: {"enabled": enabled, "forced": forced, "policies": list(policies)}
            for name, enabled, forced, policies in cursor.fetchall()
        }


def policies_install(**kwargs: Any) -> None:
    """post_migrate: give every tenant-owned table what it lacks (no-op on SQLite)."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, state in table_states().items():
            if not state["enabled"]:
                cursor.execute(f"ALTER TABLE {qn(table)} ENABLE ROW LEVEL SECURITY")
            if not state["forced"]:
                cursor.execute(f"ALTER TABLE {qn(table)} FORCE ROW LEVEL SECURITY")
            if POLICY in state["policies"]:
                continue
            for old in state["policies"]:
                if old.startswith("wayfarer_tenant_"):
                    cursor.execute(f"DROP POLICY {qn(old)} ON {qn(table)}")
            cursor.execute(
                f"CREATE POLICY {qn(POLICY)} ON {qn(table)}"
                f" USING ({VISIBLE}) WITH CHECK ({VISIBLE})"
            )
