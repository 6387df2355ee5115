"""Liquid's `recommended.<strategy>` (messaging/context.py): the recommendations API's strategies
in messages, rendered for the shop's contacts by the sender's own path, made for a whole batch at
once and only when the template names them."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience.models import Contact
from messaging.context import RECOMMENDED_NAMES, context_for_contact, contexts_build, sample_context
from messaging.models import Channel, Delivery, Template
from messaging.rendering import render, template_errors
from messaging.services import Decision, deliveries_create
from tenants.models import Tenant

from .conftest import contact

LIST = "<ul id='NAME'>{% for p in recommended.NAME %}<li>{{ p.sku }}</li>{% endfor %}</ul>"
EVERY_STRATEGY = "".join(LIST.replace("NAME", name) for name in RECOMMENDED_NAMES)


def template(tenant: Tenant, html: str) -> Template:
    return Template.objects.create(
        tenant=tenant, name=f"T {uuid.uuid4()}", channel=Channel.EMAIL, subject="Hi", html=html
    )


def deliveries(
    tenant: Tenant, tpl: Template, people: list[Contact], event: dict[str, Any] | None = None
) -> list[Delivery]:
    deliveries_create(
        tenant=tenant,
        template=tpl,
        source=f"campaign:{tpl.pk}",
        decisions=[
            Decision(contact=c, idempotency_key=f"k-{tpl.pk}-{c.pk}", event=event) for c in people
        ],
    )
    return list(
        Delivery.objects.filter(tenant=tenant, template=tpl)
        .select_related("contact", "tenant")
        .order_by("pk")
    )


def listed(html: str) -> dict[str, list[str]]:
    return {
        name: re.findall(r"<li>([^<]*)</li>", block)
        for name, block in re.findall(r"<ul id='(\w+)'>(.*?)</ul>", html)
    }


def test_every_strategy_renders_in_a_message(shop: Tenant) -> None:
    tpl = template(shop, EVERY_STRATEGY)
    viewed = {"name": "Product Viewed", "properties": {"sku": "TRAIL"}}
    [delivery] = deliveries(shop, tpl, [contact(shop, "eve")], event=viewed)

    context = contexts_build([delivery])[delivery.pk]
    found = listed(render(delivery.content, context).html)

    # The same answers as the API's, four each, about the event's product (trail shoes).
    assert found["recently_viewed"] == ["KIDS", "BOOTS"]
    assert found["similar"] == ["KIDS", "BOOTS", "HEAVY", "SLIPPER"]
    assert found["bought_together"] == ["SOCKS"]
    assert found["trending"][0] == "BOOTS" or found["trending"][0] == "KIDS"
    assert found["back_in_stock"] == ["BOOTS"]
    assert found["auto"] == ["BOOTS", "SOCKS", "KIDS", "HEAVY"]
    shown = {sku for skus in found.values() for sku in skus}
    assert not shown & {"ROAD", "RACER", "LACES", "TRAIL"}  # bought, out of stock, the event's


def test_an_order_message_recommends_what_goes_with_the_order(shop: Tenant) -> None:
    tpl = template(shop, EVERY_STRATEGY)
    ordered = {
        "name": "Order Completed",
        "properties": {"products": [{"sku": "TRAIL", "quantity": 1, "price": 100}]},
    }
    [delivery] = deliveries(shop, tpl, [contact(shop, "eve")], event=ordered)

    context = contexts_build([delivery])[delivery.pk]

    assert [p["sku"] for p in context["recommended"]["bought_together"]] == ["SOCKS"]
    assert context["recommended"]["bought_together"][0]["url"] == "https://acme.example/p/socks"


def test_a_preview_matches_the_send(shop: Tenant) -> None:
    tpl = template(shop, EVERY_STRATEGY)
    eve = contact(shop, "eve")
    [delivery] = deliveries(shop, tpl, [eve])

    sent = contexts_build([delivery])[delivery.pk]["recommended"]
    preview = context_for_contact(tenant=shop, contact=eve)["recommended"]

    assert preview == sent
    assert sent["trending"]


def test_a_batch_pays_for_strategies_only_when_its_template_names_them(shop: Tenant) -> None:
    people = [contact(shop, "eve")]
    for n in range(15):
        from .conftest import track

        track(shop, f"w-{n}", "Product Viewed", sku="BOOTS")
        people.append(contact(shop, f"w-{n}"))
    plain = deliveries(shop, template(shop, "<p>{{ contact.first_name }}</p>"), people)
    named = deliveries(shop, template(shop, EVERY_STRATEGY), people)

    def cost(batch: list[Delivery]) -> int:
        with CaptureQueriesContext(connection) as queries:
            contexts_build(batch)
        return len(queries)

    # Without the name: nothing asked, every strategy's list empty.
    assert cost(plain[:1]) == cost(plain)
    assert contexts_build(plain)[plain[0].pk]["recommended"] == {n: [] for n in RECOMMENDED_NAMES}
    # With it: a fixed number of queries more, whatever the batch's size.
    # ("similar" reads one product's nearest prices, or many products' bands and, for those
    # short of four, their categories: one query more at most.)
    assert cost(named[:1]) <= cost(named) <= cost(named[:1]) + 1
    assert cost(named) > cost(plain)
    assert cost(named) - cost(plain) <= 12


def test_the_editor_sample_has_every_strategy_in_the_real_shape(shop: Tenant) -> None:
    sample = sample_context(shop)
    [delivery] = deliveries(shop, template(shop, EVERY_STRATEGY), [contact(shop, "eve")])
    real = contexts_build([delivery])[delivery.pk]

    assert set(sample["recommended"]) == set(RECOMMENDED_NAMES) == set(real["recommended"])
    for name in RECOMMENDED_NAMES:
        assert sample["recommended"][name], name
        assert set(sample["recommended"][name][0]) == set(real["recommended"]["auto"][0])
    assert template_errors(template(shop, EVERY_STRATEGY)) == {}
