"""The Products pages: the catalog (search by name, SKU or category, an in-stock filter, keyset
pages) and a product's page with its fields and what happened about it, read from the order
ledger (`Order`, kept beyond event retention) and the contacts' carts and wishlists — never from
the events table, which is partitioned and huge, and whose JSON properties no index serves
under row-level security."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django import forms
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.timezone import now
from django.views.decorators.http import require_GET

from audience.models import Contact, Order, Product
from audience.recommendations import order_lines
from core.ids import uuid_or_404
from core.pagination import keyset_page
from tenants.decorators import TenantRequest
from tenants.models import Tenant

PAGE_SIZE = 50
WINDOWS = (30, 90)  # days of the order ledger the product page sums
LATEST_ORDERS = 10


class ProductFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="Name, SKU or category",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, SKU or category"}),
    )
    stock = forms.ChoiceField(
        required=False,
        label="Stock",
        choices=[("", "Any"), ("in", "In stock"), ("out", "Out of stock")],
    )


def product_search(*, tenant: Tenant, search: str = "", stock: str = "") -> QuerySet[Product]:
    """The team's products whose name, SKU or category contains `search` (any case), in or out
    of stock if `stock` says so."""
    qs = Product.objects.filter(tenant=tenant)
    term = search.strip()
    if term:
        qs = qs.filter(
            Q(name__icontains=term) | Q(sku__icontains=term) | Q(category__icontains=term)
        )
    if stock in ("in", "out"):
        qs = qs.filter(in_stock=stock == "in")
    return qs


def product_get(*, tenant: Tenant, public_id: object) -> Product:
    product = Product.objects.filter(
        tenant=tenant, public_id=uuid_or_404(public_id, what="product")
    ).first()
    if product is None:
        raise Http404("No such product")
    return product


@dataclass
class Sales:
    days: int
    orders: int = 0
    units: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)  # by currency


@dataclass
class OrderLine:
    occurred_at: datetime
    message_id: str
    contact: Contact | None
    quantity: int
    price: Decimal | None
    currency: str
    order_value: Decimal | None


@dataclass
class Activity:
    sales: list[Sales]
    latest: list[OrderLine]
    in_cart: int
    in_wishlist: int


def _orders_with(tenant: Tenant, sku: str, since: datetime) -> QuerySet[Order]:
    """The team's orders since `since` that may hold `sku`, newest first: the ledger's
    (tenant, occurred_at) index gives the window; PostgreSQL narrows it by JSON containment,
    other databases by text (order_lines then checks each exactly)."""
    qs = Order.objects.filter(tenant=tenant, occurred_at__gte=since)
    if connection.vendor == "postgresql":
        qs = qs.filter(
            Q(properties__products__contains=[{"sku": sku}])
            | Q(properties__products__contains=[{"product_id": sku}])
        )
    else:
        qs = qs.filter(properties__icontains=sku)
    return qs.order_by("-occurred_at", "-pk")


def product_activity(*, tenant: Tenant, product: Product, at: datetime | None = None) -> Activity:
    """Units sold, orders and revenue over the last 30 and 90 days (the order lines' own unit
    price, the catalog price when a line has none; by the order's currency, the product's when
    the order names none), the latest orders holding it, and how many contacts have it in their
    cart and their wishlist."""
    at = at or now()
    windows = [Sales(days=d) for d in WINDOWS]
    latest: list[tuple[Order, int, Decimal | None]] = []
    since = at - timedelta(days=max(WINDOWS))
    orders = _orders_with(tenant, product.sku, since).only(
        "pk", "occurred_at", "message_id", "contact_id", "value", "currency", "properties"
    )
    for order in orders.iterator(chunk_size=1000):
        lines = [(q, p) for sku, q, p in order_lines(order.properties) if sku == product.sku]
        if not lines:
            continue
        units = sum(q for q, _ in lines)
        currency = order.currency or product.currency
        revenue = sum(
            (q * (p if p is not None else (product.price or Decimal(0))) for q, p in lines),
            Decimal(0),
        )
        for window in windows:
            if order.occurred_at >= at - timedelta(days=window.days):
                window.orders += 1
                window.units += units
                window.revenue[currency] = window.revenue.get(currency, Decimal(0)) + revenue
        if len(latest) < LATEST_ORDERS:
            latest.append((order, units, lines[0][1]))
    contacts = Contact.objects.filter(tenant=tenant).in_bulk([o.contact_id for o, _, _ in latest])
    in_cart, in_wishlist = _interest_counts(tenant, product.sku)
    return Activity(
        sales=windows,
        latest=[
            OrderLine(
                occurred_at=o.occurred_at,
                message_id=o.message_id,
                contact=contacts.get(o.contact_id),
                quantity=units,
                price=price,
                currency=o.currency or product.currency,
                order_value=o.value,
            )
            for o, units, price in latest
        ],
        in_cart=in_cart,
        in_wishlist=in_wishlist,
    )


def _interest_counts(tenant: Tenant, sku: str) -> tuple[int, int]:
    """How many of the team's contacts have `sku` in their cart, and in their wishlist (as
    audience.catalog.contacts_interested_in finds them for back-in-stock mail)."""
    qs = Contact.objects.filter(tenant=tenant)
    if connection.vendor == "postgresql":
        return (
            qs.filter(cart__contains=[{"sku": sku}]).count(),
            qs.filter(wishlist__contains=[sku]).count(),
        )
    cart = wishlist = 0
    candidates = qs.filter(Q(wishlist__icontains=sku) | Q(cart__icontains=sku))
    for c in candidates.only("pk", "wishlist", "cart").iterator(chunk_size=1000):
        cart += any(isinstance(i, dict) and i.get("sku") == sku for i in c.cart)
        wishlist += sku in c.wishlist
    return cart, wishlist


@require_GET
def product_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = ProductFilterForm(request.GET or None)
    filters: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    products = product_search(
        tenant=request.tenant, search=filters.get("q", ""), stock=filters.get("stock", "")
    )
    cursor = request.GET.get("after")
    page = keyset_page(products, field="created_at", cursor=cursor, size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("after", None)
    ctx = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": bool(filters.get("q") or filters.get("stock")),
        "any_products": Product.objects.filter(tenant=request.tenant).exists(),
    }
    template = "audience/product_list.html"
    if request.htmx and request.htmx.target == "product-results":
        template += "#results"
    return render(request, template, ctx)


@require_GET
def product_detail(request: TenantRequest, tenant_slug: str, product_id: UUID) -> HttpResponse:
    product = product_get(tenant=request.tenant, public_id=product_id)
    activity = product_activity(tenant=request.tenant, product=product)
    return render(
        request, "audience/product_detail.html", {"product": product, "activity": activity}
    )
