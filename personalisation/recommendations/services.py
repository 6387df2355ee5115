"""Serving recommendations: the products of a strategy for a visitor, and the
`Recommendation Served` event that lets clicks and revenue be attributed to it
(docs/personalisation/recommendations.md).

Both doors call `recommendation_serve`: the browser's GET /v1/recommendations (write key) and
the REST GET /api/v1/recommendations/ (secret key).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from audience.models import Contact, Product
from audience.selectors import (
    RECOMMENDATION_AUTO,
    RECOMMENDATION_STRATEGIES,
    RecommendationVisitor,
    recommend_strategy,
)
from audience.services import Fact, events_record, visitor_events_accept
from tenants.models import Tenant

SERVED = "Recommendation Served"
CLICKED = "Recommendation Clicked"
STRATEGY_CHOICES = (RECOMMENDATION_AUTO, *RECOMMENDATION_STRATEGIES)
NEEDS_PRODUCT = ("similar",)
DEFAULT_PLACEMENT = "default"
DEFAULT_LIMIT, MAX_LIMIT = 4, 24
PLACEMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
SOURCE = "recommendations"


@dataclass
class Served:
    recommendation_id: str
    strategy: str
    placement: str
    products: list[Product] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "recommendationId": self.recommendation_id,
            "strategy": self.strategy,
            "placement": self.placement,
            "products": [product_json(p) for p in self.products],
        }


def _price(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def product_json(p: Product) -> dict[str, Any]:
    """The product shape every personalisation answer shares (ISSUE 16's contract)."""
    return {
        "sku": p.sku,
        "name": p.name,
        "url": p.url,
        "imageUrl": p.image_url,
        "price": _price(p.price),
        "currency": p.currency,
        "category": p.category,
        "inStock": p.in_stock,
    }


def recommendation_serve(
    *,
    tenant: Tenant,
    strategy: str,
    placement: str,
    limit: int,
    product: str | None = None,
    contact: Contact | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> Served:
    """Recommend by `strategy` to the visitor (`contact`, resolved by the caller from the
    ids, None for one not recorded yet) about `product` (a sku, optional), and record the answer
    as a `Recommendation Served` event: through the ingestion inbox when the caller named the
    visitor by user or anonymous id (one insert; a new visitor becomes a contact as a first
    track would make them), else as a fact on the contact named by its id."""
    visitor = RecommendationVisitor(key=0, contact=contact, seeds=(product,) if product else ())
    found = recommend_strategy(tenant=tenant, strategy=strategy, visitors=[visitor], limit=limit)
    served = Served(
        recommendation_id=str(uuid.uuid4()),
        strategy=strategy,
        placement=placement,
        products=found[0],
    )
    properties: dict[str, Any] = {
        "recommendation_id": served.recommendation_id,
        "placement": placement,
        "strategy": strategy,
        "skus": [p.sku for p in served.products],
    }
    if product:
        properties["product"] = product
    if user_id or anonymous_id:
        visitor_events_accept(
            tenant=tenant,
            user_id=user_id,
            anonymous_id=anonymous_id,
            events=[(SERVED, properties)],
            source=SOURCE,
        )
    elif contact is not None:
        events_record(
            tenant=tenant,
            facts=[
                Fact(
                    contact_id=contact.pk,
                    name=SERVED,
                    key=served.recommendation_id,
                    source=SOURCE,
                    properties=properties,
                )
            ],
            fresh=True,
        )
    return served
