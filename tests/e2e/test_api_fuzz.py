"""Fuzzing the HTTP doors against a live server, with a fixed seed and bounded example counts.

- The REST API (/api/v1/): schemathesis generates requests from the OpenAPI schema the API
  publishes, valid and invalid ones, with a real secret key (and some with another team's ids);
  every answer must be documented (status code, content type, body schema) and none a 5xx. A
  stateful run follows links (create → read → change → delete).
- The tracking doors (/v1/track and its siblings, Segment's HTTP Tracking API, not in the schema):
  hypothesis posts hostile JSON (deep nesting, NUL, lone surrogates, huge numbers, odd dates,
  wrong types); never a 5xx, and every 4xx has Segment's error shape. The worker's job runs inline
  (`ingest_inline`), so "accepted" also means "stored".

Counts: FUZZ_EXAMPLES per operation and mode on PostgreSQL, fewer on SQLite (its phase of CI only
checks that the vendor branches hold). WAYFARER_FUZZ_EXAMPLES raises them for a long local run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import api_key, basic

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POSTGRESQL = connection.vendor == "postgresql"
FUZZ_EXAMPLES = int(os.environ.get("WAYFARER_FUZZ_EXAMPLES", "0")) or (25 if POSTGRESQL else 4)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_settings(examples: int) -> hypothesis.settings:
    """Reproducible runs: the same requests every time, no example database, no shrinking (a
    failure is reported as generated; schemathesis prints the request to replay)."""
    return hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


@dataclass
class Seeded:
    secret: str  # acme's secret key
    write: str  # acme's write key
    ids: dict[str, list[str]]  # path parameter name → ids that exist (acme's and globex's)


def _seed_team(tenant: Any, *, other: bool) -> dict[str, list[str]]:
    from audience import catalog
    from audience.segment_spec import parse_call
    from audience.services import calls_record, contact_upsert
    from campaigns import services as campaign_services
    from campaigns.models import Occurrence
    from messaging.models import Channel, Template
    from segments import services as segment_services
    from tests.factories import sent_delivery

    prefix = "g" if other else "a"
    contacts = [
        contact_upsert(tenant=tenant, user_id=f"{prefix}-u1", email="", fields={}, source="api")[0],
        contact_upsert(
            tenant=tenant,
            user_id=f"{prefix}-u2",
            email=f"{prefix}2@example.com",
            fields={"first_name": "Ann", "attributes": {"plan": "pro", "seats": 3}},
            source="api",
        )[0],
    ]
    calls_record(
        tenant=tenant,
        calls=[
            parse_call(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"{prefix}-u2",
                    "messageId": f"{prefix}-m{n}",
                    "properties": {"total": 20 + n, "products": [{"sku": "X", "price": 5}]},
                }
            )
            for n in range(3)
        ],
    )
    catalog.products_upsert(
        tenant=tenant,
        items=[
            {"sku": "X", "name": "Thing", "price": "9.99", "currency": "EUR", "in_stock": True},
            {"sku": "Y", "name": "Other", "price": None, "currency": "EUR", "in_stock": False},
        ],
    )
    buyers = segment_services.segment_create(
        tenant=tenant,
        name="Buyers",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "event", "event": "Order Completed"}],
        },
    )
    segment_services.segment_create(  # refers to Buyers: deleting Buyers is refused (in use)
        tenant=tenant,
        name="Buyers with email",
        rules={
            "type": "group",
            "match": "all",
            "children": [
                {"type": "segment", "segment": str(buyers.public_id)},
                {"type": "reachable", "channel": "email", "reachable": True},
            ],
        },
    )
    email = Template.objects.create(
        tenant=tenant, name="Receipt", subject="Thanks {{ contact.first_name }}", html="<p>Hi</p>"
    )
    Template.objects.create(tenant=tenant, name="Ping", channel=Channel.PUSH, title="Hi", body="…")
    delivery = sent_delivery(tenant, email, email=f"{prefix}3@example.com", source="test")
    campaign = campaign_services.campaign_create(
        tenant=tenant, name="Spring", segments=[buyers], variants=[(email, 100)]
    )
    Occurrence.objects.create(tenant=tenant, campaign=campaign, key="once")
    return {
        "public_id": [
            *(str(c.public_id) for c in contacts),
            str(buyers.public_id),
            str(delivery.public_id),
            str(campaign.public_id),
        ],
        "template": [str(email.public_id)],
    }


@pytest.fixture
def seeded(world: Any, ingest_inline: None) -> Seeded:
    acme_ids = _seed_team(world.acme, other=False)
    globex_ids = _seed_team(world.globex, other=True)
    return Seeded(
        secret=api_key(world.acme, kind="secret")[1],
        write=api_key(world.acme, kind="write")[1],
        ids={name: acme_ids[name] + globex_ids[name][:1] for name in acme_ids},
    )


def _published_schema() -> dict[str, Any]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))


def _operations(schema: Any) -> Iterator[Any]:
    """Every operation, deletions last (they remove the seeded objects the others read)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(operations, key=lambda op: op.method.upper() == "DELETE")


def _fuzz_operation(
    operation: Any, mode: GenerationMode, *, base_url: str, seeded: Seeded
) -> str | None:
    """None when every generated request was answered as documented, else the failure."""
    headers = {"Authorization": f"Bearer {seeded.secret}"}
    known = st.sampled_from([None, *seeded.ids["public_id"]])

    @fuzz_settings(FUZZ_EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=mode), known_id=known)
    def run(case: Any, known_id: str | None) -> None:
        # Half the time, an object that exists (or another team's, which must stay a 404).
        if known_id and case.path_parameters and "public_id" in case.path_parameters:
            case.path_parameters["public_id"] = known_id
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # reported with the other operations
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_it_answers_every_generated_rest_request_as_documented(live_server, seeded) -> None:
    schema = schemathesis.openapi.from_dict(_published_schema())
    failures = [
        failure
        for operation in _operations(schema)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _fuzz_operation(operation, mode, base_url=live_server.url, seeded=seeded))
    ]
    assert not failures, "\n\n".join(failures)


def test_it_follows_links_from_creation_to_deletion(live_server, seeded) -> None:
    schema = schemathesis.openapi.from_dict(_published_schema())
    machine = schema.as_state_machine()
    headers = {"Authorization": f"Bearer {seeded.secret}"}

    class Scenario(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_server.url, "headers": headers, "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers)

    settings = fuzz_settings(max(2, FUZZ_EXAMPLES // 3))
    Scenario.run(settings=hypothesis.settings(settings, stateful_step_count=6))


# --- the tracking doors (Segment's HTTP Tracking API) --------------------------------------------

TRACKING_PATHS = ["track", "identify", "page", "screen", "group", "alias", "batch", "t", "b"]

# Values that have broken stores before: NUL, lone surrogates (as JSON escapes: Python's json
# writes them as such), numbers beyond 64 bits and beyond float range, dates at and past the ends
# of the calendar, offsets beyond ±15:59.
ODD_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfff",
        "9999-12-31T23:59:59Z",
        "10000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+25:00",
        "2024-01-01T00:00:00-99:99",
        "-infinity",
        "NaN",
        "1e309",
        "💥" * 10,
    ]
)
ODD_NUMBERS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, 1e308, -1e308, 0.1, -0])
HOSTILE = ODD_TEXT | ODD_NUMBERS
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "type",
    "event",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "properties",
    "traits",
    "context",
    "name",
    "groupId",
    "previousId",
    "integrations",
]
NESTED = ["properties", "traits", "context"]
INNER_KEYS = ["email", "quantity", "price", "total", "birthday", "createdAt", "timezone", "sku"]


@st.composite
def tracking_calls(draw: st.DrawFn) -> Any:
    """A plausible call with one or two things wrong: a field of the wrong type, or a hostile
    value (or key) at the top or inside properties / traits / context."""
    call: dict[str, Any] = {
        "userId": draw(st.sampled_from(["fuzz", "a-u2"])),
        "event": "Fuzzed",
        "messageId": draw(st.uuids()).hex,
        "properties": {"total": 10},
    }
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.sampled_from(["field", "inner", "key"]))
        value = draw(HOSTILE | JSON_VALUES)
        if where == "field":
            call[draw(st.sampled_from(FIELDS))] = value
        elif where == "inner":
            call.setdefault(draw(st.sampled_from(NESTED)), {})
            inner = call[draw(st.sampled_from(NESTED))] = {}
            inner[draw(st.sampled_from(INNER_KEYS))] = value
        else:
            call["properties"] = {draw(ODD_TEXT): 1}
    return call


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


def _lone_surrogate_body() -> bytes:
    return b'{"userId": "u", "event": "\\ud800", "properties": {"\\udfff": 1}}'


@st.composite
def tracking_bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["call", "batch", "raw"]))
    if shape == "raw":
        return draw(
            st.sampled_from(
                [
                    b"",
                    b"{",
                    b"null",
                    b"[]",
                    b'"text"',
                    b"\x00",
                    b"\xff\xfe",
                    _lone_surrogate_body(),
                    json.dumps(_nested(2000)).encode(),
                    json.dumps({"userId": "u", "event": "e", "properties": _nested(200)}).encode(),
                    b'{"userId": "u", "event": "e", "properties": {"n": 1e999}}',
                    b'{"userId": "u", "event": "e", "properties": {"n": -1e999}}',
                ]
            )
        )
    if shape == "batch":
        value: Any = {"batch": draw(st.lists(tracking_calls(), max_size=4))}
    else:
        value = draw(tracking_calls())
    return json.dumps(value).encode()  # json writes lone surrogates as \\udXXX escapes


def _is_segment_error(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("success") is False
        and isinstance(body.get("code"), str)
        and isinstance(body.get("message"), str)
    )


def test_it_answers_hostile_tracking_calls_without_a_server_error(live_server, seeded) -> None:
    session = requests.Session()
    auth = {"Authorization": basic(seeded.write), "Content-Type": "application/json"}
    failures: list[str] = []

    @fuzz_settings(FUZZ_EXAMPLES * 8)
    @given(path=st.sampled_from(TRACKING_PATHS), body=tracking_bodies())
    def run(path: str, body: bytes) -> None:
        response = session.post(f"{live_server.url}/v1/{path}", data=body, headers=auth, timeout=30)
        problem = None
        if response.status_code >= 500:
            problem = "a server error"
        elif response.status_code >= 400:
            try:
                shaped = _is_segment_error(response.json())
            except ValueError:
                shaped = False
            if not shaped:
                problem = "not Segment's error shape"
        if problem:
            failures.append(
                f"POST /v1/{path} {body[:300]!r}\n→ {response.status_code} {problem}: "
                f"{response.text[:300]}"
            )

    run()
    assert not failures, "\n\n".join(dict.fromkeys(failures))


def test_it_answers_a_missing_or_wrong_write_key_in_segments_shape(live_server) -> None:
    for header in ("", basic("wf_wk_nope"), "Basic !!!", "Bearer x"):
        response = requests.post(
            f"{live_server.url}/v1/track",
            data=b'{"userId": "u", "event": "e"}',
            headers={"Authorization": header, "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 401 and _is_segment_error(response.json())
