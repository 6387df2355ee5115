"""The transactional send API: POST /api/v1/messages/ and following a message."""

from __future__ import annotations

from typing import Any

import pytest

from audience.models import Contact, Identity
from messaging import outbox
from messaging.models import Delivery, Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(world: Any) -> Contact:
    contact = Contact.objects.create(
        tenant=world.acme, user_id="u-ann", email="ann@example.com", first_name="Ann"
    )
    Identity.objects.create(
        tenant=world.acme, contact=contact, kind=Identity.Kind.USER_ID, value="u-ann"
    )
    return contact


@pytest.fixture
def receipt(world: Any) -> Template:
    return Template.objects.create(
        tenant=world.acme,
        name="Receipt",
        subject="Order {{ data.order_id }} for {{ contact.first_name }}",
        html="<p>Thanks {{ contact.first_name }}, order {{ data.order_id }} is on its way.</p>",
    )


def _send(
    api: Any,
    template: Template,
    contact: dict[str, Any],
    key: str = "",
    tenant: Any = None,
    **body: Any,
) -> Any:
    payload = {"template": str(template.public_id), "contact": contact, **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api("post", "messages/", payload, tenant=tenant, **headers)


@pytest.fixture
def api(client: Any, world: Any) -> Any:
    """The REST API with a tenant's secret key; extra keyword arguments become request headers."""
    import json

    from tenants import services

    keys = {
        t.pk: services.api_key_create(tenant=t, kind="secret", name="t")[1]
        for t in (world.acme, world.globex)
    }

    def call(method: str, path: str, body: Any = None, tenant: Any = None, **headers: Any) -> Any:
        tenant = tenant or world.acme
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {keys[tenant.pk]}", **headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(f"/api/v1/{path}", **kwargs)

    return call


def test_it_sends_a_personal_receipt_that_the_caller_can_follow(
    api: Any, ann: Contact, receipt: Template, mail_sink: Any
) -> None:
    response = _send(api, receipt, {"user_id": "u-ann"}, data={"order_id": "A-17"})
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["status"] == "queued"
    assert created["category"] == "transactional"
    assert created["contact"] == {"id": str(ann.public_id), "email": "ann@example.com"}

    outbox.deliveries_send(channel="email")

    (message,) = mail_sink.messages()
    assert message["Subject"] == "Order A-17 for Ann"
    assert message["To"] == "ann@example.com"
    followed = api("get", f"messages/{created['id']}/").json()
    assert followed["status"] == "sent"
    assert followed["sent_at"] is not None


def test_it_finds_the_contact_by_id_user_id_or_email(
    api: Any, ann: Contact, receipt: Template
) -> None:
    for ref in ({"id": str(ann.public_id)}, {"user_id": "u-ann"}, {"email": "ANN@example.com"}):
        response = _send(api, receipt, ref)
        assert response.status_code == 201, response.json()
        assert response.json()["contact"]["id"] == str(ann.public_id)


def test_a_retried_request_with_the_same_idempotency_key_sends_once(
    api: Any, ann: Contact, receipt: Template, mail_sink: Any
) -> None:
    first = _send(api, receipt, {"email": "ann@example.com"}, key="order-A-17")
    again = _send(api, receipt, {"email": "ann@example.com"}, key="order-A-17")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    outbox.deliveries_send(channel="email")
    retried_after_sending = _send(api, receipt, {"email": "ann@example.com"}, key="order-A-17")
    outbox.deliveries_send(channel="email")
    assert retried_after_sending.json()["status"] == "sent"
    assert len(mail_sink.messages()) == 1
    assert Delivery.objects.count() == 1


def test_it_refuses_an_idempotency_key_reused_for_another_message(
    api: Any, ann: Contact, receipt: Template
) -> None:
    _send(api, receipt, {"email": "ann@example.com"}, key="k1", data={"order_id": "1"})
    response = _send(api, receipt, {"email": "ann@example.com"}, key="k1", data={"order_id": "2"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"email": "nobody@example.com"}, "email"),
        ({"user_id": "nobody"}, "user_id"),
        ({"id": "9b2f4c53-0000-4000-8000-000000000000"}, "id"),
    ],
)
def test_it_names_the_contact_it_cannot_find_and_decides_nothing(
    api: Any, ann: Contact, receipt: Template, contact: dict[str, str], field: str
) -> None:
    response = _send(api, receipt, contact)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]["contact"]
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact": {"email": "ann@example.com", "user_id": "u-ann"}}, "contact"),
        ({"contact": {}}, "contact"),
        ({"contact": {"email": "ann@example.com"}, "template": "nope"}, "template"),
        ({"contact": {"email": "ann@example.com"}, "data": {"x": "y" * 40_000}}, "data"),
        ({"contact": {"email": "ann@example.com"}, "category": "spam"}, "category"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(
    api: Any, ann: Contact, receipt: Template, body: dict[str, Any], field: str
) -> None:
    payload = {"template": str(receipt.public_id), **body}
    response = api("post", "messages/", payload)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Delivery.objects.exists()


def test_it_refuses_an_overlong_idempotency_key(api: Any, ann: Contact, receipt: Template) -> None:
    response = _send(api, receipt, {"email": "ann@example.com"}, key="k" * 201)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_another_tenants_templates_and_messages_are_not_found(
    api: Any, world: Any, ann: Contact, receipt: Template
) -> None:
    Contact.objects.create(tenant=world.globex, email="ann@example.com")
    response = _send(api, receipt, {"email": "ann@example.com"}, tenant=world.globex)
    assert response.status_code == 404
    mine = _send(api, receipt, {"email": "ann@example.com"}).json()
    assert api("get", f"messages/{mine['id']}/", tenant=world.globex).status_code == 404
    assert api("get", "messages/not-a-uuid/").status_code == 404
    assert api("get", "messages/", tenant=world.globex).json()["results"] == []
    assert api("get", "message-templates/", tenant=world.globex).json()["results"] == []


def test_it_lists_messages_newest_first_filtered_by_status(
    api: Any, ann: Contact, receipt: Template
) -> None:
    ids = [_send(api, receipt, {"email": "ann@example.com"}).json()["id"] for _ in range(3)]
    listed = api("get", "messages/?status=queued").json()["results"]
    assert [m["id"] for m in listed] == ids[::-1]
    assert api("get", "messages/?status=sent").json()["results"] == []


def test_it_needs_a_secret_key(client: Any, receipt: Template) -> None:
    response = client.post("/api/v1/messages/", {}, content_type="application/json")
    assert response.status_code == 401
