"""messaging 0003 + tenants 0002: the sender fields and VAPID keys move from Tenant to
SenderIdentity, and back on a rollback, keeping every key (subscribed browsers must keep
working)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from messaging.vapid import vapid_key_pair
from tenants.keys import keys_install, keys_uninstall

BEFORE = [("messaging", "0002_delivery_token_while_sending"), ("tenants", "0001_initial")]
AFTER = [("messaging", "0003_sender_identity"), ("tenants", "0002_remove_sender_identity_fields")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to `targets`; the apps (historical models) of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def schema_restored(transactional_db: None) -> Iterator[None]:
    # Going back re-creates Django's single-column foreign keys into tenant tables, which need
    # a primary key on id alone: the tenant keys go first and come back (tenants/keys.py).
    keys_uninstall()
    try:
        yield
    finally:  # whatever happened, the other tests get the current schema back
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        keys_install()


def test_it_moves_every_tenants_sender_and_keys_and_back_unchanged(schema_restored: None) -> None:
    apps = migrate(BEFORE)
    OldTenant = apps.get_model("tenants", "Tenant")
    public, private = vapid_key_pair()
    acme = OldTenant.objects.create(
        name="Acme",
        slug="acme",
        sender_name="Acme Shop",
        sender_email="news@acme.example",
        reply_to_email="care@acme.example",
        vapid_public_key=public,
        vapid_private_key=private,
    )
    keyless = OldTenant.objects.create(name="Raw", slug="raw")  # made by a raw fixture

    apps = migrate(AFTER)
    SenderIdentity = apps.get_model("messaging", "SenderIdentity")
    moved = SenderIdentity.objects.get(tenant_id=acme.pk)
    assert (moved.sender_name, moved.sender_email, moved.reply_to_email) == (
        "Acme Shop",
        "news@acme.example",
        "care@acme.example",
    )
    assert (moved.vapid_public_key, moved.vapid_private_key) == (public, private)
    made = SenderIdentity.objects.get(tenant_id=keyless.pk)
    assert made.vapid_public_key and made.vapid_private_key and made.vapid_public_key != public
    columns = {
        c.name
        for c in connection.introspection.get_table_description(
            connection.cursor(), "tenants_tenant"
        )
    }
    assert not columns & {"sender_email", "vapid_public_key", "vapid_private_key"}

    apps = migrate(BEFORE)
    back = apps.get_model("tenants", "Tenant").objects.get(pk=acme.pk)
    assert (back.sender_email, back.vapid_public_key, back.vapid_private_key) == (
        "news@acme.example",
        public,
        private,
    )

    apps = migrate(AFTER)
    again = apps.get_model("messaging", "SenderIdentity").objects.get(tenant_id=acme.pk)
    assert (again.vapid_public_key, again.vapid_private_key) == (public, private)
