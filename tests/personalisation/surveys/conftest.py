"""Survey fixtures: acme's NPS survey and short survey (through the service), an email and a
push delivery already sent to a contact, and the hosted-page link of a delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audience.models import Contact
from messaging.models import Category, Channel, Delivery, Template
from personalisation.surveys import links, services
from personalisation.surveys.models import Survey


@pytest.fixture
def nps(world: Any) -> Survey:
    return services.survey_create(
        tenant=world.acme,
        name="Customer NPS",
        kind="nps",
        question="How likely are you to recommend Acme to a friend?",
        thanks="Thanks, that helps us a lot.",
    )


@pytest.fixture
def short(world: Any) -> Survey:
    return services.survey_create(
        tenant=world.acme,
        name="Checkout feedback",
        kind="short",
        question="Three quick questions about your order.",
        questions=[
            {
                "type": "choice",
                "label": "How did you find us?",
                "choices": ["Search", "Friend", "Ad"],
            },
            {"type": "scale", "label": "How easy was checkout?"},
            {"type": "text", "label": "Anything we should improve?"},
        ],
    )


def _template(tenant: Any, channel: str) -> Template:
    found = Template.objects.filter(tenant=tenant, channel=channel).first()
    if found is not None:
        return found
    if channel == Channel.PUSH:
        return Template.objects.create(
            tenant=tenant,
            name="Survey push",
            channel=Channel.PUSH,
            title="How did we do?",
            body="Tell us in one tap",
            target_url="{{ surveys.customer_nps.url }}",
        )
    return Template.objects.create(
        tenant=tenant,
        name="Survey email",
        channel=Channel.EMAIL,
        subject="How did we do?",
        html='<p>{% for s in surveys.customer_nps.scores %}<a href="{{ s.url }}">{{ s.score }}</a>'
        "{% endfor %}</p>",
    )


@pytest.fixture
def delivery_factory(world: Any) -> Callable[..., Delivery]:
    """delivery_factory(contact=None, tenant=acme, channel="email"): a message already sent."""
    made = {"n": 0}

    def make(
        contact: Contact | None = None, tenant: Any = None, channel: str = "email"
    ) -> Delivery:
        tenant = tenant or world.acme
        made["n"] += 1
        contact = contact or Contact.objects.create(
            tenant=tenant, email=f"reader{made['n']}@example.com", first_name="Ann"
        )
        template = _template(tenant, channel)
        return Delivery.objects.create(
            tenant=tenant,
            contact=contact,
            channel=channel,
            category=Category.MARKETING,
            template=template,
            content=template.snapshot(),
            source="test",
            idempotency_key=f"survey-{made['n']}",
            status=Delivery.Status.SENT,
        )

    return make


def page_url(survey: Survey, delivery: Delivery) -> str:
    """The hosted page's path for this delivery's contact (what the message's link holds)."""
    ref = links.SurveyRef(
        delivery.tenant_id, survey.public_id, delivery.contact.public_id, delivery.public_id
    )
    return f"/s/{links.token_make(ref)}/"
