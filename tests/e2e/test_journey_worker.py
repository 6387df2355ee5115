"""A journey on real processes: the shop tracks "Product Added" (/v1/track, committed); a real
Celery worker drains the ingestion inbox, the announcement queues the journeys' look at the
event on the engine queue, the engine enrolls the shopper and decides the email in the step's
transaction, the sender hands it to a real SMTP server. Nothing here runs in the test process
but the HTTP request and the SMTP server: what the beat and the wake-ups do in production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audience.models import Product
from audience.services import contact_upsert
from journeys import services
from journeys.models import Enrollment, Step
from messaging.models import Channel, Delivery, Template
from tests.e2e import test_celery_worker
from tests.e2e.conftest import ProcessRunner, wait_for
from tests.factories import api_key, basic
from tests.mail_sink import MailSink

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

celery_env = test_celery_worker.celery_env  # the fixture: a worker's environment, test database


def test_a_tracked_event_becomes_the_journeys_email_on_real_workers(
    processes: ProcessRunner, celery_env: dict[str, str], tmp_path: Path, world: Any, client: Any
) -> None:
    with MailSink() as sink:
        env = {**celery_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "EMAIL_TIMEOUT": "10"}
        test_celery_worker.start_worker(processes, env, tmp_path)
        test_celery_worker.wait_for_worker_ready(processes)

        Product.objects.create(tenant=world.acme, sku="tent-2p", name="Ridge tent for two")
        template = Template.objects.create(
            tenant=world.acme,
            name="Your cart",
            channel=Channel.EMAIL,
            subject="{{ contact.first_name }}, your cart is waiting",
            html="<p>{% for item in cart.items %}{{ item.name }}; {% endfor %}</p>",
        )
        contact_upsert(
            tenant=world.acme,
            user_id="sam",
            email="sam@example.com",
            fields={"first_name": "Sam", "email_consent": "granted"},
            source="test",
        )
        journey = services.journey_create(
            tenant=world.acme,
            name="Cart, at once",
            graph={
                "nodes": [
                    {"key": "t", "kind": "trigger_event", "settings": {"event": "Product Added"}},
                    {
                        "key": "m",
                        "kind": "action_email",
                        "settings": {"template": str(template.public_id)},
                    },
                ],
                "edges": [{"source": "t", "port": "next", "target": "m"}],
            },
        )
        services.journey_publish(journey=journey)

        key = api_key(world.acme, kind="write")[1]
        body = {
            "userId": "sam",
            "event": "Product Added",
            "messageId": "add-1",
            "properties": {"cart_id": "c-1", "sku": "tent-2p", "name": "Ridge tent for two"},
        }
        response = client.post(
            "/v1/track",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(key),
        )
        assert response.status_code == 200

        [received] = wait_for(
            lambda: sink.received() or None,
            timeout=60,
            what="the journey's email in the SMTP server",
            runner=processes,
        )
        assert received.rcpt_tos == ["sam@example.com"]
        assert received.message["Subject"] == "Sam, your cart is waiting"
        assert "Ridge tent for two" in received.message.get_body(("html",)).get_content()

    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == Enrollment.State.COMPLETED
    assert list(Step.objects.filter(enrollment=enrollment).values_list("node_key", "result")) == [
        ("t", "entered"),
        ("t", "followed"),
        ("m", "sent"),
        ("m", "completed"),
    ]
    [delivery] = Delivery.objects.filter(source=f"journey:{journey.public_id}")
    wait_for(
        lambda: Delivery.objects.filter(pk=delivery.pk, status="sent").exists(),
        timeout=30,
        what="the outbox to record the email as sent",
        runner=processes,
    )
