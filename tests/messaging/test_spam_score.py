"""Mail that filters trust (issue 18, item 11): every ready-made email template — the demo's and
the ready-made journeys' — scores at most 1.0 with SpamAssassin's local rules
(`spamassassin -L -t`, Debian's package), as the message the outbox would hand over: real
headers, tracked links, the open pixel and the hidden preheader. Skipped where SpamAssassin is
not installed; .ci/run installs it, so CI always runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from audience.models import Contact, Product
from journeys.presets import TEMPLATES as PRESET_TEMPLATES
from messaging.context import context_for_contact
from messaging.mail import email_build
from messaging.models import Channel, Delivery, SenderIdentity
from messaging.rendering import render
from messaging.services import template_save
from ops.demo import DEMO_TEMPLATES

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(SPAMASSASSIN is None, reason="spamassassin is not installed")
LIMIT = 1.0

TEMPLATES = [
    pytest.param(fields, id=f"demo: {fields['name']}")
    for fields in DEMO_TEMPLATES
    if fields["channel"] == Channel.EMAIL
] + [
    pytest.param(fields, id=f"preset: {key}")
    for key, fields in PRESET_TEMPLATES.items()
    if fields["channel"] == Channel.EMAIL
]


def score(message: bytes) -> tuple[float, str]:
    report = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=message, capture_output=True, timeout=120, check=True
    ).stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M)
    assert found, report[:3000]
    rules = report.split("Content analysis details:", 1)[-1]
    return float(found.group(1)), rules


# Known failing (issue 18 item 11, open): the open pixel makes every short message "image only"
# to SpamAssassin (HTML_IMAGE_ONLY_*, 1.4-2.1 points), and short HTML with a List-Unsubscribe
# but no DKIM scores LIST_PARTIAL_SHORT_MSG (1.0). Strict: the day a template passes, this
# fails and the marker must go.
@pytest.mark.xfail(strict=True, reason="issue 18 item 11: open pixel read as image-only")
@pytest.mark.parametrize("fields", TEMPLATES)
def test_a_ready_made_template_scores_well_under_spam(world: Any, fields: dict[str, Any]) -> None:
    tenant = world.acme
    SenderIdentity.objects.update_or_create(
        tenant=tenant,
        defaults={"sender_name": "Acme Outdoor", "sender_email": "hello@acme-outdoor.example"},
    )
    for n, (name, price) in enumerate((("Trail Tent 2P", "199.00"), ("Camp Mug", "12.50"))):
        Product.objects.create(
            tenant=tenant,
            sku=f"P{n}",
            name=name,
            price=price,
            url=f"https://acme-outdoor.example/p/{n}",
            image_url=f"https://acme-outdoor.example/i/{n}.jpg",
            category="Camping",
        )
    contact = Contact.objects.create(
        tenant=tenant,
        email="ann.smith@example.com",
        first_name="Ann",
        cart=[{"sku": "P0", "quantity": 1, "price": "199.00"}],
        recently_viewed=["P1"],
    )
    template = template_save(tenant=tenant, **fields)
    delivery = Delivery.objects.create(
        tenant=tenant,
        contact=contact,
        channel=Channel.EMAIL,
        template=template,
        content=template.snapshot(),
        source="test",
        idempotency_key="spam-score",
    )
    event = {"name": "Product Viewed", "properties": {"sku": "P0", "name": "Trail Tent 2P"}}
    context = context_for_contact(tenant=tenant, contact=contact, event=event, delivery=delivery)
    message = email_build(delivery=delivery, rendered=render(delivery.content, context))

    points, rules = score(message.message().as_bytes())

    assert points <= LIMIT, f"{fields['name']} scores {points}:\n{rules}"
