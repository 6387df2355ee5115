"""Settings → Webhooks: the team's endpoints and, per endpoint, its recent messages.

Every member reads; admins create, change, disable, delete, rotate the secret, send a test event
and replay a message. A new or rotated secret is rendered in the answer to that POST (not
redirected to), the only place it ever appears whole. Forms work without JavaScript; htmx
refreshes the messages panel in place.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.forms import add_service_errors
from core.pagination import keyset_page
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role
from webhooks import selectors, services
from webhooks.forms import WebhookEndpointForm
from webhooks.models import WebhookEndpoint

MESSAGES_PAGE = 25


@require_GET
def webhook_endpoint_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    endpoints = list(selectors.endpoint_list(tenant=request.tenant))
    return render(
        request, "webhooks/endpoint_list.html", {"endpoints": endpoints, "tab": "webhooks"}
    )


def _form(request: TenantRequest, initial: dict[str, Any] | None = None) -> WebhookEndpointForm:
    """The endpoint form; read-only for members who may not manage (POST is refused to them)."""
    if request.method == "POST" and not request.membership.can_manage:
        raise PermissionDenied("This needs the admin role or higher.")
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if not request.membership.can_manage:
        for field in form.fields.values():
            field.disabled = True
    return form


@require_http_methods(["GET", "POST"])
def webhook_endpoint_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = _form(request)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(tenant=request.tenant, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            # Rendered, not redirected: this answer is the only place the secret appears.
            return _detail(request, endpoint, new_secret=endpoint.secret, created=True)
    return render(
        request, "webhooks/endpoint_form.html", {"form": form, "endpoint": None, "tab": "webhooks"}
    )


def _messages_context(request: TenantRequest, endpoint: WebhookEndpoint) -> dict[str, Any]:
    page = keyset_page(
        selectors.message_list(endpoint=endpoint),
        field="created_at",
        cursor=request.GET.get("after"),
        size=MESSAGES_PAGE,
    )
    return {"endpoint": endpoint, "page": page}


def _detail(
    request: TenantRequest,
    endpoint: WebhookEndpoint,
    *,
    new_secret: str = "",
    created: bool = False,
) -> HttpResponse:
    ctx = {
        **_messages_context(request, endpoint),
        "new_secret": new_secret,
        "created": created,
        "tab": "webhooks",
    }
    response = render(request, "webhooks/endpoint_detail.html", ctx)
    if new_secret:  # shown once: not kept by the browser's caches (as the API keys page)
        response["Cache-Control"] = "no-store"
    return response


@require_GET
def webhook_endpoint_detail(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    if request.htmx and request.htmx.target == "messages-panel":
        return render(
            request,
            "webhooks/endpoint_detail.html#messages_panel",
            _messages_context(request, endpoint),
        )
    return _detail(request, endpoint)


@require_http_methods(["GET", "POST"])
def webhook_endpoint_edit(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    initial = {
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
    }
    form = _form(request, initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(endpoint=endpoint, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "The endpoint is saved.")
            return redirect("webhook_endpoint_detail", tenant_slug, endpoint.public_id)
    return render(
        request,
        "webhooks/endpoint_form.html",
        {"form": form, "endpoint": endpoint, "tab": "webhooks"},
    )


@require_POST
@role_required(Role.ADMIN)
def webhook_endpoint_toggle(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    """Disable an enabled endpoint (nothing is written or sent for it), enable a disabled one."""
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    services.endpoint_update(endpoint=endpoint, enabled=not endpoint.enabled)
    messages.success(
        request,
        "The endpoint is enabled: new events are sent to it."
        if endpoint.enabled
        else "The endpoint is disabled: nothing is sent to it until you enable it.",
    )
    return redirect("webhook_endpoint_detail", tenant_slug, endpoint.public_id)


@require_POST
@role_required(Role.ADMIN)
def webhook_endpoint_rotate_secret(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    secret = services.endpoint_secret_rotate(endpoint=endpoint)
    return _detail(request, endpoint, new_secret=secret)


@require_POST
@role_required(Role.ADMIN)
def webhook_endpoint_test(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    services.endpoint_test_send(endpoint=endpoint)
    messages.success(request, "A test event is on its way; its status shows below.")
    if request.htmx:
        return render(
            request,
            "webhooks/endpoint_detail.html#messages_panel",
            _messages_context(request, endpoint),
        )
    return redirect("webhook_endpoint_detail", tenant_slug, endpoint.public_id)


@require_POST
@role_required(Role.ADMIN)
def webhook_endpoint_delete(
    request: TenantRequest, tenant_slug: str, endpoint_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"The endpoint {endpoint.url} is deleted.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("webhook_endpoint_list", args=[tenant_slug]))
    return redirect("webhook_endpoint_list", tenant_slug)


@require_POST
@role_required(Role.ADMIN)
def webhook_message_replay(
    request: TenantRequest, tenant_slug: str, endpoint_id: str, message_id: str
) -> HttpResponse:
    endpoint = selectors.endpoint_get(tenant=request.tenant, public_id=endpoint_id)
    message = selectors.message_get(endpoint=endpoint, public_id=message_id)
    try:
        services.message_replay(message=message)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{message.webhook_id} is queued again.")
    if request.htmx:
        return render(
            request,
            "webhooks/endpoint_detail.html#messages_panel",
            _messages_context(request, endpoint),
        )
    return redirect("webhook_endpoint_detail", tenant_slug, endpoint.public_id)
