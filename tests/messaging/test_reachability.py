"""Who can be reached by email or by push (messaging/reachability.py), one rule at a time.

Each rule is checked through both forms the rest of the code uses: the SQL filter a segment
compiles (`reachable_q`) and the one-contact answer (`contact_reachable`). That the sender's
policy and the preference centre agree with them is the property test's job
(test_reachability_property.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience.models import Consent, Contact
from messaging import reachability
from messaging.models import Category, Channel, PushSubscription, SendingPolicy, Suppression
from messaging.reachability import (
    NO_EMAIL,
    NO_OPT_IN,
    NO_PUSH,
    SUPPRESSED,
    UNSUBSCRIBED,
    contact_reachable,
    reachable_q,
    unreachable_reason,
)
from messaging.services import suppression_add

pytestmark = pytest.mark.django_db

MARKETING, TRANSACTIONAL = Category.MARKETING, Category.TRANSACTIONAL


def _contact(tenant: Any, name: str, email: str = "", **fields: Any) -> Contact:
    return Contact.objects.create(tenant=tenant, first_name=name, email=email, **fields)


def reached(tenant: Any, channel: str, category: str = MARKETING) -> set[str]:
    """The first names of the tenant's contacts reachable on `channel`, by the SQL filter;
    asserting that the one-contact answer and the negated filter say the same."""
    contacts = Contact.objects.filter(tenant=tenant)
    by_sql = {
        c.first_name
        for c in contacts.filter(reachable_q(tenant=tenant, channel=channel, category=category))
    }
    one_by_one = {
        c.first_name
        for c in contacts
        if contact_reachable(tenant=tenant, contact=c, channel=channel, category=category)
    }
    others = {
        c.first_name
        for c in contacts.filter(~reachable_q(tenant=tenant, channel=channel, category=category))
    }
    assert by_sql == one_by_one
    assert others == {c.first_name for c in contacts} - by_sql
    return by_sql


def _subscribe(tenant: Any, contact: Contact, n: int = 1, *, active: bool = True) -> None:
    PushSubscription.objects.create(
        tenant=tenant,
        contact=contact,
        endpoint=f"https://push.example/{tenant.pk}/{contact.pk}/{n}",
        p256dh="k",
        auth="a",
        active=active,
    )


def test_it_reaches_by_email_an_address_that_did_not_opt_out(world: Any) -> None:
    _contact(world.acme, "ann", "ann@example.com")
    _contact(world.acme, "gil", "gil@example.com", email_consent=Consent.GRANTED)
    assert reached(world.acme, Channel.EMAIL) == {"ann", "gil"}


def test_it_does_not_reach_by_email_a_contact_without_an_address(world: Any) -> None:
    nomail = _contact(world.acme, "nomail", email_consent=Consent.GRANTED)
    assert reached(world.acme, Channel.EMAIL) == set()
    assert reached(world.acme, Channel.EMAIL, TRANSACTIONAL) == set()
    assert (
        reachability.contact_unreachable_reason(
            tenant=world.acme, contact=nomail, channel=Channel.EMAIL
        )
        == NO_EMAIL
    )


def test_it_does_not_reach_a_suppressed_address_in_any_case_not_even_with_a_receipt(
    world: Any,
) -> None:
    ann = _contact(world.acme, "ann", "Ann@Example.COM", email_consent=Consent.GRANTED)
    _contact(world.acme, "bob", "bob@example.com")
    suppression_add(tenant=world.acme, address="ANN@example.com", reason="bounced")
    assert reached(world.acme, Channel.EMAIL) == {"bob"}
    assert reached(world.acme, Channel.EMAIL, TRANSACTIONAL) == {"bob"}
    assert (
        reachability.contact_unreachable_reason(
            tenant=world.acme, contact=ann, channel=Channel.EMAIL
        )
        == SUPPRESSED
    )
    # Reachable again once the address leaves the list.
    Suppression.objects.filter(tenant=world.acme).delete()
    assert reached(world.acme, Channel.EMAIL) == {"ann", "bob"}


def test_it_ignores_another_tenants_suppressions(world: Any) -> None:
    _contact(world.acme, "ann", "ann@example.com")
    suppression_add(tenant=world.globex, address="ann@example.com", reason="complained")
    assert reached(world.acme, Channel.EMAIL) == {"ann"}


def test_it_reaches_by_push_only_a_contact_with_an_active_subscription(world: Any) -> None:
    _contact(world.acme, "none", push_consent=Consent.GRANTED)
    off = _contact(world.acme, "off", push_consent=Consent.GRANTED)
    _subscribe(world.acme, off, active=False)
    on = _contact(world.acme, "on")
    _subscribe(world.acme, on, 1, active=False)
    _subscribe(world.acme, on, 2, active=True)  # one active browser of two is enough
    theirs = _contact(world.acme, "theirs", "t@example.com", push_consent=Consent.GRANTED)
    # Filed under another tenant: not this tenant's. A row the database refuses at commit
    # (tenants/keys.py); within this transaction it is there, and goes before the commit.
    _subscribe(world.globex, theirs)
    reached_push = (
        reached(world.acme, Channel.PUSH),
        reached(world.acme, Channel.PUSH, TRANSACTIONAL),
    )
    PushSubscription.objects.filter(tenant=world.globex).delete()
    assert reached_push == ({"on"}, {"on"})
    assert (
        reachability.contact_unreachable_reason(
            tenant=world.acme, contact=off, channel=Channel.PUSH
        )
        == NO_PUSH
    )


def test_it_does_not_reach_an_unsubscribed_contact_with_marketing_but_does_with_a_receipt(
    world: Any,
) -> None:
    ann = _contact(world.acme, "ann", "ann@example.com", email_consent=Consent.REVOKED)
    _subscribe(world.acme, ann)
    Contact.objects.filter(pk=ann.pk).update(push_consent=Consent.REVOKED)
    for channel in (Channel.EMAIL, Channel.PUSH):
        assert reached(world.acme, channel) == set()
        assert reached(world.acme, channel, TRANSACTIONAL) == {"ann"}


def test_it_counts_unknown_consent_as_no_when_the_tenant_requires_an_opt_in(world: Any) -> None:
    for name, consent in (("unknown", Consent.UNKNOWN), ("granted", Consent.GRANTED)):
        contact = _contact(
            world.acme, name, f"{name}@example.com", email_consent=consent, push_consent=consent
        )
        _subscribe(world.acme, contact)
    assert (
        reached(world.acme, Channel.EMAIL)
        == reached(world.acme, Channel.PUSH)
        == {
            "unknown",
            "granted",
        }
    )

    SendingPolicy.objects.create(tenant=world.acme, require_opt_in=True)

    assert reached(world.acme, Channel.EMAIL) == reached(world.acme, Channel.PUSH) == {"granted"}
    assert reached(world.acme, Channel.EMAIL, TRANSACTIONAL) == {"unknown", "granted"}
    # Another tenant's setting is its own.
    _contact(world.globex, "theirs", "theirs@example.com")
    assert reached(world.globex, Channel.EMAIL) == {"theirs"}


@pytest.mark.parametrize(
    ("channel", "facts", "expected"),
    [
        # A missing address or subscription comes first: consent cannot help it.
        (Channel.EMAIL, {"email": "", "consent": Consent.REVOKED}, NO_EMAIL),
        (Channel.EMAIL, {"suppressed": True, "consent": Consent.REVOKED}, SUPPRESSED),
        (Channel.PUSH, {"push": False, "consent": Consent.REVOKED}, NO_PUSH),
        (Channel.EMAIL, {"consent": Consent.REVOKED}, UNSUBSCRIBED),
        (Channel.PUSH, {"consent": Consent.REVOKED, "opt_in": True}, UNSUBSCRIBED),
        (Channel.EMAIL, {"opt_in": True}, NO_OPT_IN),
        (Channel.PUSH, {"opt_in": True}, NO_OPT_IN),
        (Channel.EMAIL, {"opt_in": True, "consent": Consent.GRANTED}, None),
        (Channel.EMAIL, {}, None),
        (Channel.PUSH, {}, None),
        # A receipt ignores consent, never the address or the subscription.
        (Channel.EMAIL, {"consent": Consent.REVOKED, "category": TRANSACTIONAL}, None),
        (Channel.PUSH, {"opt_in": True, "category": TRANSACTIONAL}, None),
        (Channel.EMAIL, {"suppressed": True, "category": TRANSACTIONAL}, SUPPRESSED),
        (Channel.PUSH, {"push": False, "category": TRANSACTIONAL}, NO_PUSH),
    ],
)
def test_it_gives_the_first_reason_that_keeps_a_contact_out(
    channel: str, facts: dict[str, Any], expected: str | None
) -> None:
    consent = facts.get("consent", Consent.UNKNOWN)
    contact = Contact(
        email=facts.get("email", "ann@example.com"), email_consent=consent, push_consent=consent
    )
    reason = unreachable_reason(
        contact,
        channel,
        facts.get("category", MARKETING),
        require_opt_in=facts.get("opt_in", False),
        suppressed=facts.get("suppressed", False),
        has_active_push=facts.get("push", True),
    )
    assert reason == expected


def test_its_filter_is_one_query_with_no_list_of_ids(
    world: Any, django_assert_num_queries: Any
) -> None:
    for n in range(30):
        contact = _contact(world.acme, f"c{n}", f"c{n}@example.com")
        _subscribe(world.acme, contact)
    suppression_add(tenant=world.acme, address="c3@example.com", reason="bounced")

    with django_assert_num_queries(0):  # the opt-in setting is a subquery: building reads nothing
        email = reachable_q(tenant=world.acme, channel=Channel.EMAIL)
        push = reachable_q(tenant=world.acme, channel=Channel.PUSH)
    contacts = Contact.objects.filter(tenant=world.acme)
    with CaptureQueriesContext(connection) as queries:
        assert contacts.filter(email).filter(push).count() == 29
    [sql] = [q["sql"] for q in queries]
    assert sql.count("EXISTS") == 4  # suppression, subscription, and the opt-in setting twice
    assert " IN (" not in sql


def test_it_loads_a_batch_in_the_same_few_queries_whatever_its_size(
    world: Any, django_assert_num_queries: Any
) -> None:
    def load(count: int) -> None:
        contacts = [_contact(world.acme, f"c{n}", f"c{n}@example.com") for n in range(count)]
        with django_assert_num_queries(3):  # the policy, suppressions, push subscriptions
            reachability.reachability_load(tenant=world.acme, contacts=contacts)
        with django_assert_num_queries(1):  # the caller has the policy; email only
            reachability.reachability_load(
                tenant=world.acme, contacts=contacts, channels=[Channel.EMAIL], require_opt_in=False
            )

    load(2)
    load(200)


def test_it_refuses_another_tenants_contact_an_unknown_channel_and_one_not_loaded(
    world: Any,
) -> None:
    theirs = _contact(world.globex, "theirs", "theirs@example.com")
    with pytest.raises(ValueError, match="another tenant"):
        contact_reachable(tenant=world.acme, contact=theirs, channel=Channel.EMAIL)
    with pytest.raises(ValueError, match="unknown channel"):
        reachable_q(tenant=world.globex, channel="sms")
    with pytest.raises(ValueError, match="unknown channel"):
        contact_reachable(tenant=world.globex, contact=theirs, channel="sms")
    # A batch loaded for email knows nothing of push subscriptions: it refuses to guess.
    facts = reachability.reachability_load(
        tenant=world.globex, contacts=[theirs], channels=[Channel.EMAIL]
    )
    assert facts.reason(theirs, Channel.EMAIL) is None
    with pytest.raises(ValueError, match="not loaded"):
        facts.reason(theirs, Channel.PUSH)
