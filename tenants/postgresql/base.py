"""The project's PostgreSQL backend: Django's, with one feature changed for the tenant keys.

A tenant table's primary key is (id, tenant_id) in the database (tenants/keys.py) while Django
knows only `id`. PostgreSQL lets a query select columns it does not group by only when it groups
by the whole primary key, so Django's habit of grouping a model's rows by `id` alone
(`GROUP BY t.id` beside an aggregate) fails on those tables. Here they are grouped by every
selected column instead, as Django always does on SQLite. config/settings.py uses this backend
for every PostgreSQL URL.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model: Any) -> bool:
        from tenants.keys import tenant_table_set  # the models are loaded by the first query

        return super().allows_group_by_selected_pks_on_model(model) and (
            model._meta.db_table not in tenant_table_set()
        )


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
