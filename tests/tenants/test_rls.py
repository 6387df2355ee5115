"""Row-level security (core/rls.py, tenants/rls.py): the database itself keeps tenants apart.

PostgreSQL never applies RLS to a superuser (local development's `postgres`): these tests then
switch, inside their transaction, to an ordinary role made for the purpose. When the suite
already connects as an ordinary role (CI: `wayfarer`, the owner of the tables, which FORCE
subjects to the policies), they run as that role. Either way every query here is one RLS governs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connection, transaction

from core import rls
from tenants.rls import POLICY, table_states, tenant_owned_models
from tests.factories import api_key, basic

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security is PostgreSQL's"
)

PROBE_ROLE = "wayfarer_rls_probe"


@pytest.fixture
def subject_to_rls(db: None) -> Iterator[None]:
    """The rest of the test runs as a role that RLS applies to. Undone by the test's rollback
    (CREATE ROLE, GRANT and SET LOCAL ROLE are all transactional)."""
    if rls.role_bypasses_rls():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PROBE_ROLE])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE ROLE {PROBE_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS")
            cursor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
                f" TO {PROBE_ROLE}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {PROBE_ROLE}"
            )
            cursor.execute(f"SET LOCAL ROLE {PROBE_ROLE}")
        assert rls.role_bypasses_rls() is False
    yield


@pytest.fixture
def rows_of_both(world: Any) -> dict[str, int]:
    """Rows of acme and globex in most tenant-owned tables; {table: rows} as the system sees."""
    from audience.inbox import inbox_accept
    from audience.segment_spec import parse_call
    from audience.services import calls_record
    from messaging.models import Channel, Template
    from messaging.services import suppression_add
    from segments.services import segment_create, segment_membership_refresh
    from tests.factories import sent_delivery

    for tenant in (world.acme, world.globex):
        api_key(tenant)
        call = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}}
        calls_record(tenant=tenant, calls=[parse_call(call)])
        inbox_accept(tenant=tenant, calls=[parse_call(call)], source="http")
        segment = segment_create(
            tenant=tenant,
            name="Buyers",
            rules={
                "type": "group",
                "match": "all",
                "children": [
                    {
                        "type": "event",
                        "event": "Order Completed",
                        "count": {"operator": "at_least", "value": 1},
                    }
                ],
            },
        )
        segment_membership_refresh(segment=segment)
        template = Template.objects.create(
            tenant=tenant, name="Hi", channel=Channel.EMAIL, subject="Hi", html="<p>Hi</p>"
        )
        sent_delivery(tenant, template, source="test")
        suppression_add(tenant=tenant, address="gone@example.com", reason="bounced")
    return _counts()


def _counts() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for model in tenant_owned_models():
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[model._meta.db_table] = cursor.fetchone()[0]
    return counts


def _tenants_seen() -> dict[str, set[int]]:
    seen = {}
    with connection.cursor() as cursor:
        for model in tenant_owned_models():
            cursor.execute(f"SELECT DISTINCT tenant_id FROM {model._meta.db_table}")
            seen[model._meta.db_table] = {row[0] for row in cursor.fetchall()}
    return seen


def _refused(sql: str, params: list[Any]) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as exc:
        assert "row-level security" in str(exc)
        return True
    return False


def _create_refused(model: Any, **fields: Any) -> bool:
    try:
        with transaction.atomic():
            model.objects.create(**fields)
    except DatabaseError as exc:
        assert "row-level security" in str(exc)
        return True
    return False


@pytest.mark.django_db
def test_it_covers_every_tenant_owned_table() -> None:
    tables = {m._meta.db_table for m in tenant_owned_models()}
    # The detector finds the tables everyone knows are tenant-owned (it is not vacuous)…
    assert {"audience_event", "audience_contact", "tenants_membership", "tenants_apikey"} <= tables
    assert {"messaging_delivery", "messaging_senderidentity", "segments_segmentmembership"} <= (
        tables
    )
    assert "tenants_tenant" not in tables
    # …and every one of them has RLS on, forced for the owner, and the policy.
    states = table_states()
    assert set(states) == tables
    for table, state in states.items():
        assert state == {"enabled": True, "forced": True, "policies": [POLICY]}, table


@pytest.mark.django_db
def test_it_shows_nothing_and_refuses_inserts_without_the_setting(
    rows_of_both: dict[str, int], subject_to_rls: None, world: Any
) -> None:
    from audience.models import Contact
    from messaging.models import Suppression

    populated = {table for table, n in rows_of_both.items() if n}
    assert len(populated) >= 12, sorted(rows_of_both.items())  # not vacuous: most hold rows
    with rls.scope(rls.NONE):
        assert _counts() == dict.fromkeys(rows_of_both, 0)
        assert _create_refused(Contact, tenant=world.acme, email="x@example.com")
        assert _create_refused(Suppression, tenant=world.acme, address="x@example.com")


@pytest.mark.django_db
def test_it_shows_one_tenant_and_refuses_writes_for_another(
    rows_of_both: dict[str, int], subject_to_rls: None, world: Any
) -> None:
    from audience.models import Contact

    acme, globex = world.acme.pk, world.globex.pk
    with rls.tenant_scope(acme):
        for table, tenants in _tenants_seen().items():
            assert tenants <= {acme}, table
            if rows_of_both[table] >= 2:  # both tenants have rows here: acme's are seen
                assert tenants == {acme}, table
        # Unfiltered, as a forgetful view would ask: still only acme's.
        assert set(Contact.objects.values_list("tenant_id", flat=True)) == {acme}
        # WITH CHECK: acme's scope cannot write a row of globex's, nor move a row there.
        assert _create_refused(Contact, tenant=world.globex, email="x@example.com")
        assert _refused("UPDATE audience_contact SET tenant_id = %s", [globex])
        # Globex's rows are not there to change.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audience_contact SET first_name = 'x' WHERE tenant_id = %s", [globex]
            )
            assert cursor.rowcount == 0
    with rls.system_scope():
        seen = _tenants_seen()
        assert seen["audience_contact"] == seen["tenants_membership"] == {acme, globex}


@pytest.mark.django_db
def test_the_next_request_on_a_connection_does_not_inherit_its_tenant(
    client: Any, world: Any, rows_of_both: dict[str, int], subject_to_rls: None
) -> None:
    """A persistent (or pooled) connection still holds the last request's tenant when that
    request is over; the next statement, whichever request sends it, resets it first."""
    from audience.models import Contact

    _, raw = api_key(world.acme, kind="write")
    response = client.post(
        "/v1/track",
        {"userId": "u1", "event": "Signed Up"},
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(raw),
    )
    assert response.status_code == 200
    assert _server_scope_unsynced() == (str(world.acme.pk), "")  # left as the request had it
    with rls.scope(rls.NONE):  # a following request, before its edge has found a tenant
        assert Contact.objects.count() == 0
        assert _server_scope_unsynced() == ("", "")
    with rls.tenant_scope(world.globex.pk):  # …or after: the other tenant's rows only
        assert set(Contact.objects.values_list("tenant_id", flat=True)) == {world.globex.pk}


@pytest.mark.django_db
def test_requests_start_with_no_scope_and_give_back_the_one_they_found(world: Any) -> None:
    with rls.tenant_scope(world.globex.pk):
        request_started.send(sender=None)
        try:
            assert rls.current() == rls.NONE
            rls.tenant_set(world.acme.pk)  # the edge
        finally:
            request_finished.send(sender=None)
        assert rls.current() == rls.Scope(tenant_id=world.globex.pk)


@pytest.mark.django_db
def test_a_setting_undone_by_a_rollback_is_sent_again(
    world: Any, rows_of_both: dict[str, int], subject_to_rls: None
) -> None:
    from audience.models import Contact

    with rls.scope(rls.NONE):
        assert Contact.objects.count() == 0
        try:
            with transaction.atomic(), rls.tenant_scope(world.acme.pk):
                assert Contact.objects.count() == 2
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        with rls.tenant_scope(world.acme.pk):
            assert Contact.objects.count() == 2  # sent again: the rollback undid it
        assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_the_ui_edge_scopes_to_the_members_tenant(
    rows_of_both: dict[str, int], world: Any, subject_to_rls: None
) -> None:
    from audience.models import Contact
    from tenants.selectors import tenant_for_member

    with rls.scope(rls.NONE):
        tenant_for_member(user=world.charlie, slug="globex")
        assert set(Contact.objects.values_list("tenant_id", flat=True)) == {world.globex.pk}


@pytest.mark.django_db
def test_a_failed_edge_lookup_leaves_no_scope(world: Any, subject_to_rls: None) -> None:
    from django.http import Http404

    from audience.models import Contact
    from tenants.selectors import tenant_for_member

    with rls.scope(rls.NONE):
        with pytest.raises(Http404):
            tenant_for_member(user=world.charlie, slug="acme")
        assert rls.current() == rls.NONE
        assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_healthz_says_whether_the_role_is_subject_to_rls(client: Any, world: Any) -> None:
    expected = "bypassed" if rls.role_bypasses_rls() else "enforced"
    database = client.get("/healthz").json()["database"]
    assert database["row_level_security"] == expected
    assert ("warning" in database) == (expected == "bypassed")


@pytest.mark.django_db
def test_healthz_under_an_ordinary_role_says_enforced(
    client: Any, world: Any, subject_to_rls: None
) -> None:
    database = client.get("/healthz").json()["database"]
    assert database["row_level_security"] == "enforced"
    assert "warning" not in database


@pytest.mark.django_db
def test_the_hot_event_query_still_uses_the_tenant_index(world: Any, subject_to_rls: None) -> None:
    """The policy adds a filter; the tenant-leading indexes still serve the queries (the
    planner may use them: comparisons on the index's columns are leakproof)."""
    from audience.models import Event

    with rls.tenant_scope(world.acme.pk), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = (
            Event.objects.filter(tenant=world.acme, name="Order Completed")
            .order_by("-occurred_at")
            .explain()
        )
    assert "Index" in plan and "Seq Scan" not in plan, plan


def _server_scope_unsynced() -> tuple[str, str]:
    """What the server holds now, asked past Django's cursors (which would sync it first)."""
    row = connection.connection.execute(
        "SELECT current_setting(%s, true), current_setting(%s, true)",
        [rls.TENANT_SETTING, rls.SCOPE_SETTING],
    ).fetchone()
    return row[0] or "", row[1] or ""


@pytest.fixture
def many_contacts(world: Any) -> None:
    from audience.models import Contact

    Contact.objects.bulk_create(
        Contact(tenant=t, email=f"{i}@example.com", first_name="Pat", last_name=f"P{i}")
        for i in range(1000)
        for t in (world.acme, world.globex)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audience_contact")  # as the owner, before any SET ROLE


@pytest.mark.django_db
def test_contact_search_still_uses_its_prefix_indexes(
    world: Any, many_contacts: None, subject_to_rls: None
) -> None:
    """Under RLS an index on UPPER(email) went unused (UPPER and LIKE are not leakproof); the
    search now runs on stored upper-cased columns with `^@` (audience.models.UpperPrefixIndex)."""
    from audience import selectors

    with rls.tenant_scope(world.acme.pk), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = selectors.contact_list(tenant=world.acme, search="ann").explain()
    for index in ("email", "first", "last"):
        assert f"Bitmap Index Scan on contact_tenant_{index}_pfx_idx" in plan, plan
    assert "~>=~" in plan, plan  # the prefix is an index condition, not a filter
