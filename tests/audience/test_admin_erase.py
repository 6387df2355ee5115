"""Deleting contacts in the operators' admin erases them as the app does (contact_erase): with
their events, the events' dedupe keys, their orders and ids, one contact or a selection; only
where the operator is an admin of the contact's team. Events are not added or changed there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from audience.models import Contact, Event, EventKey, Identity, Order
from audience.segment_spec import parse_call
from audience.services import calls_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audience/contact/"


def track(tenant: Any, who: str, event: str, message_id: str, **properties: Any) -> None:
    message = {
        "type": "track",
        "userId": who,
        "event": event,
        "messageId": message_id,
        "properties": properties,
        "timestamp": "2026-03-10T10:00:00Z",
    }
    calls_record(tenant=tenant, calls=[parse_call(message)])


def contact(tenant: Any, who: str) -> Contact:
    return Contact.objects.get(tenant=tenant, user_id=who)


def left(tenant: Any, message_ids: list[str]) -> dict[str, int]:
    """What is left of these messages: events, keys and orders."""
    return {
        "events": Event.objects.filter(tenant=tenant, message_id__in=message_ids).count(),
        "keys": EventKey.objects.filter(tenant=tenant, message_id__in=message_ids).count(),
        "orders": Order.objects.filter(tenant=tenant, message_id__in=message_ids).count(),
    }


NOTHING = {"events": 0, "keys": 0, "orders": 0}
ANN = ["ann-view", "ann-order-1", "ann-order-2"]
BEN = ["ben-view", "ben-order"]


@pytest.fixture
def shop(world: Any) -> Any:
    t = world.acme
    track(t, "ann", "Product Viewed", "ann-view", sku="TENT")
    track(t, "ann", "Order Completed", "ann-order-1", total=80)
    track(t, "ann", "Order Completed", "ann-order-2", total=20)
    track(t, "ben", "Product Viewed", "ben-view", sku="TENT")
    track(t, "ben", "Order Completed", "ben-order", total=5)
    track(world.globex, "gus", "Order Completed", "gus-order", total=5)
    assert left(t, ANN) == {"events": 3, "keys": 3, "orders": 2}
    return t


@pytest.fixture
def superuser(login: Any) -> Any:
    return login(UserFactory(is_staff=True, is_superuser=True))


def staff(login: Any, user: Any) -> Any:
    """A staff account with every audience permission: what it may do is its team role's."""
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="audience"))
    return login(user)


def test_deleting_a_contact_erases_it_with_its_events_keys_and_orders(
    superuser: Any, world: Any, shop: Any
) -> None:
    ann = contact(shop, "ann")
    path = f"{CHANGELIST}{ann.pk}/delete/"

    page = superuser.get(path).content.decode()
    assert "erased with 3 event(s), 2 order(s), their ids and messages" in page
    assert "ann-order-1" not in page  # counted, not listed row by row

    response = superuser.post(path, {"post": "yes"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=ann.pk).exists()
    assert not Identity.objects.filter(contact_id=ann.pk).exists()
    assert left(shop, ANN) == NOTHING  # the dedupe keys too, which no cascade reaches
    assert left(shop, BEN) == {"events": 2, "keys": 2, "orders": 1}
    assert left(world.globex, ["gus-order"]) == {"events": 1, "keys": 1, "orders": 1}
    # Nothing of her remains, not even the message ids: the same message is a new one now.
    track(shop, "ann", "Order Completed", "ann-order-1", total=80)
    assert left(shop, ["ann-order-1"]) == {"events": 1, "keys": 1, "orders": 1}


def test_deleting_a_selection_erases_each_contact(superuser: Any, world: Any, shop: Any) -> None:
    chosen = [contact(shop, "ann").pk, contact(shop, "ben").pk]
    form = {"action": "delete_selected", "_selected_action": chosen}

    page = superuser.post(CHANGELIST, form).content.decode()
    assert "erased with 3 event(s), 2 order(s)" in page
    assert "erased with 2 event(s), 1 order(s)" in page

    response = superuser.post(CHANGELIST, {**form, "post": "yes"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk__in=chosen).exists()
    assert left(shop, ANN + BEN) == NOTHING
    assert left(world.globex, ["gus-order"]) == {"events": 1, "keys": 1, "orders": 1}


def test_a_teams_admin_erases_its_contacts_and_cannot_reach_another_teams(
    login: Any, world: Any, shop: Any
) -> None:
    alice = staff(login, world.alice)  # acme's admin
    ann = contact(shop, "ann")
    gus = contact(world.globex, "gus")

    assert alice.get(f"{CHANGELIST}{gus.pk}/delete/").status_code == 404
    assert alice.post(f"{CHANGELIST}{ann.pk}/delete/", {"post": "yes"}).status_code == 302

    assert left(shop, ANN) == NOTHING
    assert Contact.objects.filter(pk=gus.pk).exists()


def test_a_marketer_may_not_erase(login: Any, world: Any, shop: Any) -> None:
    dave = staff(login, world.dave)  # acme's marketer: the app's Erase needs an admin
    ann = contact(shop, "ann")

    assert dave.get(f"{CHANGELIST}{ann.pk}/delete/").status_code == 403
    assert dave.post(f"{CHANGELIST}{ann.pk}/delete/", {"post": "yes"}).status_code == 403
    form = {"action": "delete_selected", "_selected_action": [ann.pk]}
    page = dave.post(CHANGELIST, form).content.decode()
    assert "contacts of Acme (erasing needs the admin role there)" in page
    assert dave.post(CHANGELIST, {**form, "post": "yes"}).status_code == 403

    assert Contact.objects.filter(pk=ann.pk).exists()
    assert left(shop, ANN) == {"events": 3, "keys": 3, "orders": 2}


def test_events_are_not_added_or_changed_in_the_admin(superuser: Any, shop: Any) -> None:
    # Ingestion writes an event's dedupe key and its order-ledger row with it; the admin would not.
    event = Event.objects.filter(tenant=shop, message_id="ann-order-1").get()
    assert superuser.get("/admin/audience/event/add/").status_code == 403
    page = superuser.get(f"/admin/audience/event/{event.pk}/change/")
    assert page.status_code == 200  # to look at
    assert 'name="_save"' not in page.content.decode()
    superuser.post(f"/admin/audience/event/{event.pk}/change/", {"name": "Product Viewed"})
    assert Event.objects.get(pk=event.pk).name == "Order Completed"
