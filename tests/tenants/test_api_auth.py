"""The REST API's edge: secret keys resolve the tenant; every kind of bad key gets a clear 401."""

from __future__ import annotations

import base64

import pytest
from django.test import RequestFactory

from tenants import services
from tenants.authentication import write_key_from_request
from tenants.models import ApiKey
from tenants.selectors import ApiKeyError

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_it_answers_with_the_keys_own_tenant(client, world) -> None:
    _, acme_raw = services.api_key_create(tenant=world.acme, kind="secret", name="a")
    _, globex_raw = services.api_key_create(tenant=world.globex, kind="secret", name="g")
    assert client.get("/api/v1/tenant/", **bearer(acme_raw)).json()["slug"] == "acme"
    body = client.get("/api/v1/tenant/", **bearer(globex_raw)).json()
    assert body["slug"] == "globex"
    assert body["id"] == str(world.globex.public_id)
    assert "vapid_private_key" not in body


def test_it_records_when_a_key_was_last_used(client, world) -> None:
    key, raw = services.api_key_create(tenant=world.acme, kind="secret", name="a")
    assert key.last_used_at is None
    client.get("/api/v1/tenant/", **bearer(raw))
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.fixture
def keys(world):  # type: ignore[no-untyped-def]
    _, secret_raw = services.api_key_create(tenant=world.acme, kind="secret", name="s")
    _, write_raw = services.api_key_create(tenant=world.acme, kind="write", name="w")
    revoked, revoked_raw = services.api_key_create(tenant=world.acme, kind="secret", name="r")
    services.api_key_revoke(tenant=world.acme, api_key=revoked)
    return {"secret": secret_raw, "write": write_raw, "revoked": revoked_raw}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer", "Send the secret key as `Authorization: Bearer wf_sk_…`."),
        ("Token abc", "Send the secret key as `Authorization: Bearer wf_sk_…`."),
        ("Bearer not-a-key", "Malformed API key."),
        ("Bearer {write}", "This endpoint needs a secret (wf_sk_…) key."),
        ("Bearer {revoked}", "This API key has been revoked."),
        ("Bearer {tampered}", "Unknown API key."),
    ],
)
def test_it_refuses_bad_keys_with_a_specific_401(client, keys, header, message) -> None:
    tampered = keys["secret"][:-4] + ("AAAA" if not keys["secret"].endswith("AAAA") else "BBBB")
    extra = {}
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header.format(**keys, tampered=tampered)
    response = client.get("/api/v1/tenant/", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == message
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_unknown_api_urls_with_json_404(client) -> None:
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_serves_the_openapi_schema_and_docs_without_a_cdn(client) -> None:
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/tenant/" in schema.content
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html  # assets come from drf-spectacular-sidecar


def _basic(raw: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{raw}:{password}".encode()).decode()


def test_it_reads_a_write_key_the_way_segment_sdks_send_it(keys, world) -> None:
    request = RequestFactory().post("/v1/track", HTTP_AUTHORIZATION=_basic(keys["write"]))
    key = write_key_from_request(request)
    assert isinstance(key, ApiKey) and key.tenant == world.acme


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "Send the write key as the user name of HTTP Basic auth."),
        ("Basic !!!", "Malformed HTTP Basic credentials."),
        ("basic-of:{secret}", "Send the write key as the user name of HTTP Basic auth."),
        ("{basic_secret}", "This endpoint needs a write (wf_wk_…) key."),
        ("{basic_junk}", "Malformed API key."),
    ],
)
def test_it_explains_why_a_write_key_is_refused(keys, header, message) -> None:
    header = header.format(
        secret=keys["secret"], basic_secret=_basic(keys["secret"]), basic_junk=_basic("junk")
    )
    request = RequestFactory().post("/v1/track", HTTP_AUTHORIZATION=header)
    with pytest.raises(ApiKeyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_key_from_request(request)
