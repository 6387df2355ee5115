"""A contact's timeline in a marketer's words: one line per event (what was viewed or bought, for
how much, which segment, which message and what became of it) and its properties as key/value
rows instead of a raw dict.

Audience words the events it knows (Segment's e-commerce spec, pages, identifies, segments and
lifecycle stages); the apps above it word their own through `audience.registry.EVENT_SUMMARIES`.
Everything is plain text: the template escapes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from audience import registry
from audience.models import Event, LifecycleStage, Product
from tenants.models import Tenant

MAX_PROPERTY_ROWS = 200  # a page of an order with hundreds of lines stays readable
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def money(amount: object, currency: object = "") -> str:
    """ "€1,234.50", "SEK 99.00": the amount with its currency and thousands separators; "" when
    the amount is not a number."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return ""
    if not value.is_finite():
        return ""
    code = str(currency or "").upper()[:3]
    symbol = SYMBOLS.get(code, f"{code} " if code else "")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 item", "3 items", "12,000 items"."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def _quoted(text: object, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return f"“{text[: limit - 1]}…”" if len(text) > limit else f"“{text}”"


def _products(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = properties.get("products")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _quantity(item: Mapping[str, Any]) -> int:
    try:
        return max(int(item.get("quantity") or 1), 1)
    except (TypeError, ValueError):
        return 1


class _Catalog:
    """Product names by sku for one page of events, read in one query when first needed."""

    def __init__(self, tenant: Tenant, events: Sequence[Event]) -> None:
        self._tenant = tenant
        self._events = events
        self._names: dict[str, str] | None = None

    def name(self, item: Mapping[str, Any]) -> str:
        if item.get("name"):
            return str(item["name"])
        sku = str(item.get("sku") or item.get("product_id") or "")
        if self._names is None:
            skus = {str(s) for e in self._events for s in _skus(e.properties)}
            self._names = dict(
                Product.objects.filter(tenant=self._tenant, sku__in=skus).values_list("sku", "name")
            )
        return self._names.get(sku, sku or "a product")


def _skus(properties: object) -> Iterable[object]:
    if not isinstance(properties, dict):
        return []
    found = [properties.get("sku"), properties.get("product_id")]
    found += [i.get("sku") or i.get("product_id") for i in _products(properties)]
    return [s for s in found if s not in (None, "")]


def _names(items: list[dict[str, Any]], catalog: _Catalog) -> str:
    if not items:
        return ""
    first = catalog.name(items[0])
    return first if len(items) == 1 else f"{first} and {count(len(items) - 1, 'more', 'more')}"


def _product_line(verb: str) -> Callable[[Mapping[str, Any], _Catalog], str]:
    def line(p: Mapping[str, Any], catalog: _Catalog) -> str:
        price = money(p.get("price"), p.get("currency"))
        quantity = _quantity(p)
        what = catalog.name(p)
        if quantity > 1:
            what = f"{quantity} x {what}"
        return f"{verb} {what}" + (f" · {price}" if price else "")

    return line


def _order_line(verb: str) -> Callable[[Mapping[str, Any], _Catalog], str]:
    def line(p: Mapping[str, Any], catalog: _Catalog) -> str:
        items = _products(p)
        units = sum(_quantity(i) for i in items)
        parts = [f"{verb} {_names(items, catalog)}" if items else verb]
        if units:
            parts.append(count(units, "item"))
        amount = money(p.get("revenue", p.get("total", p.get("value"))), p.get("currency"))
        if amount:
            parts.append(amount)
        if p.get("order_id"):
            parts.append(f"order {p['order_id']}")
        return " · ".join(parts)

    return line


def _searched(p: Mapping[str, Any], catalog: _Catalog) -> str:
    line = f"Searched for {_quoted(p.get('query', ''))}"
    results = p.get("result_count")
    if isinstance(results, int) and not isinstance(results, bool):
        line += f" · {count(results, 'result')}" if results else " · no results"
    return line


def _segment(verb: str) -> Callable[[Mapping[str, Any], _Catalog], str]:
    return lambda p, catalog: f"{verb} segment {_quoted(p.get('segment') or 'unnamed')}"


def _stage(p: Mapping[str, Any], catalog: _Catalog) -> str:
    labels = dict(LifecycleStage.choices)
    old, new = labels.get(str(p.get("from")), "none"), labels.get(str(p.get("to")), "?")
    reason = f" ({str(p['reason']).replace('_', ' ')})" if p.get("reason") else ""
    return f"Lifecycle stage: {old} → {new}{reason}"


TRACKED: dict[str, Callable[[Mapping[str, Any], _Catalog], str]] = {
    "Product Viewed": _product_line("Viewed"),
    "Product Clicked": _product_line("Clicked"),
    "Product Added": _product_line("Added to cart:"),
    "Product Removed": _product_line("Removed from cart:"),
    "Product Added to Wishlist": _product_line("Wished for"),
    "Product Removed from Wishlist": _product_line("Removed from wishlist:"),
    "Products Searched": _searched,
    "Checkout Started": _order_line("Started checkout:"),
    "Order Completed": _order_line("Ordered"),
    "Order Refunded": _order_line("Refunded"),
    "Segment Entered": _segment("Entered"),
    "Segment Exited": _segment("Left"),
    "Lifecycle Stage Changed": _stage,
}


def _page(e: Event) -> str:
    p = e.properties if isinstance(e.properties, dict) else {}
    where = p.get("title") or e.name or p.get("path") or p.get("url") or ""
    verb = "Viewed screen" if e.type == Event.Type.SCREEN else "Visited"
    return f"{verb} {_quoted(where)}" if where else verb


def _identify(e: Event) -> str:
    traits = e.properties if isinstance(e.properties, dict) else {}
    keys = [k.replace("_", " ") for k in traits if not isinstance(traits[k], dict)][:5]
    return "Profile updated: " + ", ".join(keys) if keys else "Identified"


def summaries(*, tenant: Tenant, events: Sequence[Event]) -> dict[int, str]:
    """One line per event of `events` (a page of one contact's timeline), by event pk."""
    catalog = _Catalog(tenant, events)
    found: dict[int, str] = {}
    for e in events:
        properties = e.properties if isinstance(e.properties, dict) else {}
        if e.type in (Event.Type.PAGE, Event.Type.SCREEN):
            found[e.pk] = _page(e)
        elif e.type == Event.Type.IDENTIFY:
            found[e.pk] = _identify(e)
        elif e.name in TRACKED:
            found[e.pk] = TRACKED[e.name](properties, catalog)
    for summarise in registry.EVENT_SUMMARIES:
        found.update(summarise(tenant=tenant, events=events))
    return found


def property_rows(properties: object, prefix: str = "") -> list[tuple[str, str]]:
    """An event's properties as (key, value) rows: nested objects and lists flattened into dotted
    keys ("products.1.name"), values as text."""
    rows: list[tuple[str, str]] = []

    def walk(value: object, key: str) -> None:
        if len(rows) >= MAX_PROPERTY_ROWS:
            return
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list) and value:
            for i, v in enumerate(value, start=1):
                walk(v, f"{key}.{i}" if key else str(i))
        elif value is None:
            rows.append((key, "—"))
        elif isinstance(value, bool):
            rows.append((key, "yes" if value else "no"))
        else:
            rows.append((key, str(value) if value != {} and value != [] else "(empty)"))

    walk(properties, prefix)
    return rows
