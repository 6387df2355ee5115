"""Contacts UI: list, profile (timeline loaded progressively), edit, erase."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audience import selectors, services, timeline
from audience.forms import ContactFilterForm, ContactForm
from audience.models import Product
from core.pagination import keyset_page
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

PAGE_SIZE = 50
TIMELINE_PAGE = 25


@require_GET
def contact_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = ContactFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.contact_list(
        tenant=request.tenant, search=filters.get("q", ""), lifecycle_stage=filters.get("stage", "")
    )
    page = keyset_page(qs, field="created_at", cursor=request.GET.get("after"), size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("after", None)
    ctx = {"form": form, "page": page, "query": query.urlencode()}
    template = "audience/contact_list.html"
    if request.htmx and request.htmx.target == "contact-results":
        template += "#results"
    return render(request, template, ctx)


def _products_by_sku(request: TenantRequest, skus: list[str]) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.filter(tenant=request.tenant, sku__in=set(skus))}


@require_GET
def contact_detail(request: TenantRequest, tenant_slug: str, contact_id: str) -> HttpResponse:
    contact = selectors.contact_get(tenant=request.tenant, public_id=contact_id)
    skus = [i.get("sku") for i in contact.cart] + contact.wishlist + contact.recently_viewed
    products = _products_by_sku(request, skus)
    ctx = {
        "contact": contact,
        "identities": contact.identities.order_by("created_at"),
        "cart": [{**item, "product": products.get(item.get("sku"))} for item in contact.cart],
        "wishlist": [(sku, products.get(sku)) for sku in contact.wishlist],
        "recently_viewed": [(sku, products.get(sku)) for sku in contact.recently_viewed],
    }
    return render(request, "audience/contact_detail.html", ctx)


@require_GET
def contact_timeline(request: TenantRequest, tenant_slug: str, contact_id: str) -> HttpResponse:
    """The events of a contact, newest first, a page at a time (htmx loads it after the page)."""
    contact = selectors.contact_get(tenant=request.tenant, public_id=contact_id)
    events = selectors.event_list(tenant=request.tenant, contact=contact)
    page = keyset_page(
        events, field="occurred_at", cursor=request.GET.get("after"), size=TIMELINE_PAGE
    )
    lines = timeline.summaries(tenant=request.tenant, events=page.rows)
    entries = [(e, lines.get(e.pk, ""), timeline.property_rows(e.properties)) for e in page.rows]
    return render(
        request, "audience/_timeline.html", {"contact": contact, "page": page, "entries": entries}
    )


@require_http_methods(["GET", "POST"])
def contact_edit(request: TenantRequest, tenant_slug: str, contact_id: str) -> HttpResponse:
    contact = selectors.contact_get(tenant=request.tenant, public_id=contact_id)
    form = ContactForm(
        request.POST or None,
        instance=selectors.contact_get(tenant=request.tenant, public_id=contact_id),
    )
    if request.method == "POST" and form.is_valid():
        services.contact_update(
            tenant=request.tenant,
            contact=contact,
            fields=form.cleaned_data,
            source=f"ui:{request.user.email}",
        )
        messages.success(request, "Contact saved.")
        return redirect(
            "contact_detail", tenant_slug=request.tenant.slug, contact_id=contact.public_id
        )
    status = 400 if form.errors else 200
    return render(
        request, "audience/contact_edit.html", {"contact": contact, "form": form}, status=status
    )


@require_POST
@role_required(Role.ADMIN)
def contact_erase(request: TenantRequest, tenant_slug: str, contact_id: str) -> HttpResponse:
    contact = selectors.contact_get(tenant=request.tenant, public_id=contact_id)
    label = str(contact)
    deleted = services.contact_erase(tenant=request.tenant, contact=contact)
    messages.success(
        request,
        f"Erased {label} with {deleted.get('event', 0)} event(s). Nothing about them remains.",
    )
    return redirect("contact_list", tenant_slug=request.tenant.slug)
