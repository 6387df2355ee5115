"""Messaging changes who is reachable only through audience's services, which announce
`contacts_changed` after commit: consent (unsubscribe links, the preference centre), suppressed
addresses and browser push subscriptions. So a "reachable" segment follows at once."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from audience.models import Consent, Contact
from audience.services import contact_consent_set
from audience.signals import contacts_changed
from messaging import links, services
from messaging.models import Delivery, Suppression, Template
from messaging.push import push_subscription_deactivate, push_subscription_save
from segments.models import SegmentMembership
from segments.services import segment_create
from tests.factories import sent_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def changed() -> Iterator[list[list[int]]]:
    """The contact ids of each `contacts_changed` announcement."""
    heard: list[list[int]] = []

    def listener(*, contact_ids: list[int], **_: Any) -> None:
        heard.append(contact_ids)

    contacts_changed.connect(listener, dispatch_uid="tests.messaging.test_consent")
    yield heard
    contacts_changed.disconnect(dispatch_uid="tests.messaging.test_consent")


@pytest.fixture
def delivery(world: Any, email_template: Template) -> Delivery:
    return sent_delivery(world.acme, email_template, source="campaign:1")


def _preferences(delivery: Delivery, **choices: str) -> None:
    browser = Client(enforce_csrf_checks=True)
    path = urlsplit(links.preferences_url(delivery)).path
    page = browser.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert browser.post(path, {"csrfmiddlewaretoken": token, **choices}).status_code == 200


def _browser_keys() -> tuple[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    encode = base64.urlsafe_b64encode
    return encode(point).decode().rstrip("="), encode(b"0123456789abcdef").decode().rstrip("=")


def test_it_puts_a_contact_back_in_a_reachable_segment_when_they_resubscribe_from_the_preference_centre(  # noqa: E501
    world, delivery, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    reachable = {
        "type": "group",
        "match": "all",
        "children": [{"type": "reachable", "channel": "email", "reachable": True}],
    }
    segment = segment_create(tenant=world.acme, name="Reachable by email", rules=reachable)

    def members() -> list[int]:
        return list(
            SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
        )

    assert members() == [delivery.contact_id]

    with django_capture_on_commit_callbacks(execute=True):
        _preferences(delivery)  # both boxes unticked: email revoked
    assert members() == []

    with django_capture_on_commit_callbacks(execute=True):
        _preferences(delivery, email="on")
    assert members() == [delivery.contact_id]


def test_it_sets_consent_with_its_time_and_source_and_announces_only_a_change(
    world, changed, django_capture_on_commit_callbacks
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert contact_consent_set(
            tenant=world.acme, contact=ann, channel="push", consent=Consent.GRANTED, source="x"
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert not contact_consent_set(
            tenant=world.acme, contact=ann, channel="push", consent=Consent.GRANTED, source="y"
        )

    stored = Contact.objects.get(pk=ann.pk)
    assert (stored.push_consent, stored.push_consent_source) == (Consent.GRANTED, "x")
    assert stored.push_consent_at is not None and ann.push_consent_at == stored.push_consent_at
    assert changed == [[ann.pk]]


def test_it_refuses_consent_for_a_channel_that_has_none(world) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    with pytest.raises(ValueError):
        contact_consent_set(
            tenant=world.acme, contact=ann, channel="sms", consent=Consent.GRANTED, source="x"
        )


def test_it_announces_the_contacts_of_an_address_suppressed_and_released(
    world, changed, django_capture_on_commit_callbacks
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    Contact.objects.create(tenant=world.acme, email="bob@example.com")
    Contact.objects.create(tenant=world.globex, email="ann@example.com")  # another tenant's Ann

    with django_capture_on_commit_callbacks(execute=True):
        suppression, _ = services.suppression_add(
            tenant=world.acme, address=" Ann@Example.com", reason=Suppression.Reason.BOUNCED
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.suppression_add(  # suppressed already: nothing changed
            tenant=world.acme, address="ann@example.com", reason=Suppression.Reason.BOUNCED
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.suppression_remove(tenant=world.acme, suppression=suppression)

    assert changed == [[ann.pk], [ann.pk]]


def test_it_announces_a_push_subscription_saved_moved_and_turned_off(
    world, changed, django_capture_on_commit_callbacks
) -> None:
    ann = Contact.objects.create(tenant=world.acme, email="ann@example.com")
    bob = Contact.objects.create(tenant=world.acme, email="bob@example.com")
    p256dh, auth = _browser_keys()
    browser = {"endpoint": "https://push.example/s/1", "p256dh": p256dh, "auth": auth}

    with django_capture_on_commit_callbacks(execute=True):
        push_subscription_save(tenant=world.acme, contact=ann, **browser)
    with django_capture_on_commit_callbacks(execute=True):  # Bob signed in on Ann's browser
        push_subscription_save(tenant=world.acme, contact=bob, **browser)
    with django_capture_on_commit_callbacks(execute=True):
        push_subscription_deactivate(
            tenant=world.acme, endpoint=browser["endpoint"], reason="unsubscribed"
        )

    assert changed == [[ann.pk], sorted([ann.pk, bob.pk]), [bob.pk]]
