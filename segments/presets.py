"""Ready-made segments a team adds with one click. Each is an ordinary rule tree: once added, it
is the team's own segment to rename or change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segments import services
from segments.models import Segment
from tenants.models import Tenant


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    rules: dict[str, Any]


def _all(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": "group", "match": "all", "negate": False, "children": list(children)}


def _orders(operator: str, value: int, days: int | None = None) -> dict[str, Any]:
    return {
        "type": "metric",
        "metric": "orders_count",
        "operator": operator,
        "value": value,
        "window": {"last_days": days} if days else None,
    }


def _rfm(
    recency: list[int] | None = None,
    frequency: list[int] | None = None,
    monetary: list[int] | None = None,
) -> dict[str, Any]:
    return {"type": "rfm", "recency": recency, "frequency": frequency, "monetary": monetary}


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            "high-value-infrequent",
            "High-value infrequent buyers",
            "Average order above 500, fewer than 2 orders in the last 365 days.",
            _all(
                {"type": "metric", "metric": "average_order_value", "operator": "gt", "value": 500},
                _orders("lt", 2, 365),
            ),
        ),
        Preset(
            "cart-abandoners",
            "Cart abandoners",
            "Added to cart in the last 24 hours and have not ordered since (an order empties the"
            " cart).",
            _all(
                {"type": "event", "event": "Product Added", "window": {"last_days": 1}},
                {"type": "attribute", "field": "cart", "operator": "exists", "value": None},
            ),
        ),
        Preset(
            "browsers-not-buyers",
            "Browsers, not buyers",
            "Viewed products in the last 30 days and never ordered.",
            _all(
                {"type": "event", "event": "Product Viewed", "window": {"last_days": 30}},
                # Read from the order ledger, not the raw events (segments/conditions/sql.py):
                # "never" stays never after retention removes old orders' events.
                {"type": "event", "event": "Order Completed", "did": False},
            ),
        ),
        Preset(
            "lapsed-customers",
            "Lapsed customers",
            "Ordered before, but not in the last 90 days.",
            _all(
                {
                    "type": "metric",
                    "metric": "last_order_date",
                    "operator": "more_than_days_ago",
                    "value": 90,
                },
            ),
        ),
        Preset(
            "new-signups",
            "New sign-ups",
            "Known contacts (with a user id) created in the last 7 days.",
            _all(
                {"type": "attribute", "field": "user_id", "operator": "exists", "value": None},
                {
                    "type": "attribute",
                    "field": "created_at",
                    "operator": "within_last_days",
                    "value": 7,
                },
            ),
        ),
        Preset(
            "birthdays-this-month",
            "Birthdays this month",
            "Contacts whose birthday falls in the current month.",
            _all(
                {"type": "attribute", "field": "birthday", "operator": "this_month", "value": None},
            ),
        ),
        # RFM groups: quintiles (5 = best fifth) of the team's customers by how recently,
        # how often and how much they ordered.
        Preset(
            "rfm-champions",
            "Champions",
            "Ordered most recently (top fifth), and among the top two fifths by number of orders"
            " and by amount spent.",
            _all(_rfm(recency=[5], frequency=[4, 5], monetary=[4, 5])),
        ),
        Preset(
            "rfm-at-risk",
            "At risk",
            "Used to order often (top three fifths by number of orders) but not recently"
            " (bottom two fifths by last order).",
            _all(_rfm(recency=[1, 2], frequency=[3, 4, 5])),
        ),
        Preset(
            "rfm-hibernating",
            "Hibernating",
            "Last ordered long ago (bottom fifth) and seldom (bottom two fifths by number of"
            " orders).",
            _all(_rfm(recency=[1], frequency=[1, 2])),
        ),
    ]
}


def preset_add(*, tenant: Tenant, key: str) -> Segment:
    """Create the preset as the team's segment (a number is added to the name if taken)."""
    preset = PRESETS[key]
    name, n = preset.name, 1
    while Segment.objects.filter(tenant=tenant, name=name).exists():
        n += 1
        name = f"{preset.name} ({n})"
    return services.segment_create(
        tenant=tenant, name=name, rules=preset.rules, description=preset.description
    )
