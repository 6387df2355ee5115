"""Fixtures for messaging: a real SMTP server to send to, and contacts and templates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.mail_sink import MailSink


@pytest.fixture
def mail_sink(settings: Any) -> Iterator[MailSink]:
    """A real SMTP server on loopback, with Django's SMTP backend pointed at it."""
    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        yield sink


@pytest.fixture
def email_template(world: Any) -> Any:
    from messaging.models import Channel, Template

    return Template.objects.create(
        tenant=world.acme,
        name="Welcome",
        channel=Channel.EMAIL,
        subject="Hello {{ contact.first_name | default: 'there' }}",
        preheader="A warm welcome",
        html=(
            "<html><head><style>p { color: #123456; }</style></head><body>"
            "<p>Hi {{ contact.first_name }}!</p>"
            '<p><a href="https://shop.example/welcome">Visit the shop</a></p>'
            "</body></html>"
        ),
    )
