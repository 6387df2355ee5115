"""Messaging UI: templates with a live preview and "send test", the outbox, sending settings and
the suppression list.

The editor posts the whole form to `message_template_preview` as the marketer types (htmx,
debounced) and gets back the preview pane plus the Liquid errors beside each field (out of
band), so the server renders the preview exactly as a send would. Without JavaScript the same
form posts to the page, whose "Update preview" and "Send test" buttons re-render it.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audience.models import Contact
from core import throttle
from core.forms import add_service_errors
from core.pagination import keyset_page
from core.throttle import rate_limited
from messaging import previews, selectors, sender_verification, services
from messaging.forms import (
    ACTION_SLOTS,
    DeliveryFilterForm,
    SenderIdentityForm,
    SendingPolicyForm,
    SendTestForm,
    SuppressionForm,
    SuppressionSearchForm,
    TemplateForm,
    channel_or_default,
    template_draft,
)
from messaging.models import Channel, Suppression, Template
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role

PAGE_SIZE = 50
EDITOR = "messaging/template_form.html"


# Templates ---------------------------------------------------------------------------------


@require_GET
def template_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    templates = selectors.template_list(tenant=request.tenant)
    return render(request, "messaging/template_list.html", {"templates": templates})


def _preview_contact(request: TenantRequest, value: str | None) -> Contact | None:
    """The contact the editor previews with (404 for another tenant's); none: the sample."""
    value = (value or "").strip()
    return selectors.preview_contact_get(tenant=request.tenant, public_id=value) if value else None


def _contact_choices(contact: Contact | None, matches: list[Contact]) -> list[tuple[str, str]]:
    """The picker's radio buttons after the sample: the chosen contact, then the matches."""
    shown = ([contact] if contact else []) + [c for c in matches if contact is None or c != contact]
    return [(str(c.public_id), previews.contact_label(c)) for c in shown]


def _field_errors(form: TemplateForm, preview: previews.Preview) -> dict[str, list[str]]:
    """The errors beside each field: the form's (after saving), then the preview's Liquid errors
    not already among them (saving reports the same ones)."""
    errors: dict[str, list[str]] = {}
    for name in form.fields:
        shown = [str(e) for e in form.errors.get(name, [])] if form.is_bound else []
        shown += [e for e in preview.errors.get(name, []) if e not in shown]
        errors[name] = shown
    return errors


def _editor_context(
    request: TenantRequest,
    *,
    template: Template | None,
    form: TemplateForm,
    draft: Template,
    contact: Contact | None,
    search: str = "",
    send_form: SendTestForm | None = None,
    send_result: previews.SendResult | None = None,
) -> dict[str, Any]:
    slug = request.tenant.slug
    preview = previews.preview_build(tenant=request.tenant, template=draft, contact=contact)
    errors = _field_errors(form, preview)
    fields = {name: {"field": form[name], "errors": errors[name]} for name in form.fields}
    matches = selectors.preview_contacts(tenant=request.tenant, search=search)
    can_edit = request.membership.can_edit
    if send_form is None:
        send_form = SendTestForm(
            initial={"test_to": request.user.email},
            recipients=selectors.send_test_recipients(tenant=request.tenant),
        )
    if template is not None:
        save_url = reverse("template_edit", args=[slug, template.public_id])
    else:
        save_url = f"{reverse('template_new', args=[slug])}?channel={form.channel}"
    return {
        "template": template,
        "channel": form.channel,
        "channel_label": Channel(form.channel).label,
        "form": form,
        "fields": fields,
        "action_slots": [
            (n, fields[f"action{n}_title"], fields[f"action{n}_url"])
            for n in ACTION_SLOTS
            if f"action{n}_title" in fields
        ],
        "oob_errors": list(errors.items()),
        "preview": preview,
        # Rendering's messages name the field and line themselves.
        "preview_errors": [problem for problems in preview.errors.values() for problem in problems],
        "contact": contact,
        "search": search,
        "contact_choices": _contact_choices(contact, matches),
        "no_match": bool(search.strip()) and not matches,
        "readonly": not can_edit,
        "can_send_test": can_edit,
        "send_form": send_form,
        "send_result": send_result,
        "save_url": save_url,
        "preview_url": reverse("template_preview", args=[slug]),
        "contacts_url": reverse("template_preview_contacts", args=[slug]),
        "send_test_url": reverse("template_send_test", args=[slug]),
        "cancel_url": reverse("template_list", args=[slug]),
    }


def _posted_editor(
    request: TenantRequest, template: Template | None
) -> tuple[TemplateForm, Template, Contact | None]:
    """The editor as posted: an unbound form showing what was typed (no complaints while not
    saving), the draft it makes, and the chosen contact."""
    channel = template.channel if template else channel_or_default(request.POST.get("channel"))
    form = TemplateForm(channel=channel)
    form.initial = {name: request.POST.get(name, "") for name in form.fields}
    draft = template_draft(
        tenant=request.tenant, channel=channel, data=request.POST, template=template
    )
    return form, draft, _preview_contact(request, request.POST.get("contact"))


def _editor_page(request: TenantRequest, *, template: Template | None) -> HttpResponse:
    """New and edit: GET shows the editor with its preview; POST saves, or (without
    JavaScript) refreshes the preview and the contact search."""
    if request.method == "GET":
        channel = template.channel if template else channel_or_default(request.GET.get("channel"))
        initial = TemplateForm.initial_for(template) if template else None
        form = TemplateForm(channel=channel, initial=initial)
        draft = template or Template(tenant=request.tenant, channel=channel)
        ctx = _editor_context(request, template=template, form=form, draft=draft, contact=None)
        return render(request, EDITOR, ctx)

    if request.POST.get("action") == "preview":
        form, draft, contact = _posted_editor(request, template)
        ctx = _editor_context(
            request,
            template=template,
            form=form,
            draft=draft,
            contact=contact,
            search=request.POST.get("contact_q", ""),
        )
        return render(request, EDITOR, ctx)

    channel = template.channel if template else channel_or_default(request.POST.get("channel"))
    form = TemplateForm(request.POST, channel=channel, tenant=request.tenant, template=template)
    if form.is_valid():
        try:
            # A copy: a refused save must leave nothing changed, not even the page's title.
            saved = services.template_save(
                tenant=request.tenant,
                template=copy.copy(template) if template else None,
                channel=channel,
                **form.template_fields(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved “{saved.name}”.")
            return redirect(
                "template_edit",
                tenant_slug=request.tenant.slug,
                template_id=saved.public_id,
            )
    draft = template_draft(
        tenant=request.tenant, channel=channel, data=request.POST, template=template
    )
    contact = _preview_contact(request, request.POST.get("contact"))
    ctx = _editor_context(request, template=template, form=form, draft=draft, contact=contact)
    return render(request, EDITOR, ctx, status=400)


@require_http_methods(["GET", "POST"])
def template_new(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _editor_page(request, template=None)


@require_http_methods(["GET", "POST"])
def template_edit(request: TenantRequest, tenant_slug: str, template_id: UUID) -> HttpResponse:
    template = selectors.template_get(tenant=request.tenant, public_id=template_id)
    return _editor_page(request, template=template)


def _posted_template(request: TenantRequest) -> Template | None:
    """The saved template an editor post is about (its channel cannot change), if any."""
    public_id = request.POST.get("template", "").strip()
    return selectors.template_get(tenant=request.tenant, public_id=public_id) if public_id else None


@require_POST
@rate_limited(throttle.TEMPLATE_PREVIEW, key=lambda request: str(request.user.pk))  # per user
def template_preview(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The preview pane for the posted editor, and the Liquid errors beside its fields."""
    template = _posted_template(request)
    form, draft, contact = _posted_editor(request, template)
    ctx = _editor_context(request, template=template, form=form, draft=draft, contact=contact)
    return render(request, f"{EDITOR}#preview_response", ctx)


@require_GET
def template_preview_contacts(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The contact picker's choices: the sample, the chosen contact and those matching `q`."""
    contact = _preview_contact(request, request.GET.get("contact"))
    search = request.GET.get("contact_q", "")
    matches = selectors.preview_contacts(tenant=request.tenant, search=search)
    ctx = {
        "contact": contact,
        "search": search,
        "contact_choices": _contact_choices(contact, matches),
        "no_match": bool(search.strip()) and not matches,
        "preview_url": reverse("template_preview", args=[request.tenant.slug]),
    }
    return render(request, f"{EDITOR}#contact_choices", ctx)


@require_POST
def template_send_test(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Send the editor's current content once, rendered for the chosen contact: an email to the
    chosen member of the team, a push to the contact's browsers. Saved or not, nothing is
    recorded (previews.template_send_test says who may send what to whom, how often)."""
    template = _posted_template(request)
    form, draft, contact = _posted_editor(request, template)
    send_form = SendTestForm(
        request.POST, recipients=selectors.send_test_recipients(tenant=request.tenant)
    )
    to = send_form.cleaned_data["test_to"] if send_form.is_valid() else ""
    if draft.channel == Channel.EMAIL and not to:
        result = previews.SendResult(
            False, "Nothing was sent: choose a member of your team to send the test to."
        )
    else:
        result = previews.template_send_test(
            tenant=request.tenant, template=draft, contact=contact, actor=request.user, to=to
        )
    if request.htmx:
        return render(request, f"{EDITOR}#send_result", {"send_result": result})
    ctx = _editor_context(
        request,
        template=template,
        form=form,
        draft=draft,
        contact=contact,
        send_form=send_form,
        send_result=result,
    )
    return render(request, EDITOR, ctx, status=200 if result.ok else 400)


# The outbox ----------------------------------------------------------------------------------


@require_GET
def delivery_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = DeliveryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.delivery_list(
        tenant=request.tenant,
        status=filters.get("status", ""),
        channel=filters.get("channel", ""),
    )
    page = keyset_page(qs, field="created_at", cursor=request.GET.get("after"), size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("after", None)
    ctx = {"form": form, "page": page, "query": query.urlencode()}
    template = "messaging/delivery_list.html"
    if request.htmx and request.htmx.target == "delivery-results":
        template += "#results"
    return render(request, template, ctx)


@require_GET
def delivery_detail(request: TenantRequest, tenant_slug: str, delivery_id: UUID) -> HttpResponse:
    delivery = selectors.delivery_get(tenant=request.tenant, public_id=delivery_id)
    content = [
        (key, value)
        for key, value in delivery.content.items()
        if key not in ("template", "name", "channel") and value not in ("", [], None)
    ]
    preview = previews.delivery_preview(delivery=delivery)
    ctx = {
        "delivery": delivery,
        "content": content,
        "preview": preview,
        "preview_errors": [problem for problems in preview.errors.values() for problem in problems],
    }
    return render(request, "messaging/delivery_detail.html", ctx)


# Sending settings and suppressions -------------------------------------------------------------


def _sending_settings_page(
    request: TenantRequest,
    *,
    sender_form: SenderIdentityForm | None = None,
    policy_form: SendingPolicyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The settings page: who messages come from, the rules they pass, the web push key."""
    sender = selectors.sender_identity_get(tenant=request.tenant)
    policy = selectors.sending_policy_get(tenant=request.tenant)
    ctx = {
        "sender": sender,
        # A pending From address is what the form shows: saving again does not ask again.
        "sender_form": sender_form
        or SenderIdentityForm(
            instance=sender,
            initial={"sender_email": sender.pending_sender_email or sender.sender_email},
        ),
        "form": policy_form or SendingPolicyForm(instance=policy),
        "readonly": not request.membership.can_manage,
    }
    return render(request, "messaging/sending_settings.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
def sending_settings(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Everyone on the team may read the rules; admins change them."""
    if request.method == "POST":
        if not request.membership.can_manage:
            raise PermissionDenied("Only admins change the sending settings.")
        policy = selectors.sending_policy_get(tenant=request.tenant)
        form = SendingPolicyForm(request.POST, instance=policy)
        if form.is_valid():
            services.sending_policy_save(tenant=request.tenant, policy=policy, **form.cleaned_data)
            messages.success(request, "Sending settings saved. They apply to the next message.")
            return redirect("sending_settings", tenant_slug=request.tenant.slug)
        return _sending_settings_page(request, policy_form=form, status=400)
    return _sending_settings_page(request)


@require_POST
@role_required(Role.ADMIN)
def sender_identity_edit(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The sender's name and addresses (a form of the settings page)."""
    form = SenderIdentityForm(
        request.POST, instance=selectors.sender_identity_get(tenant=request.tenant)
    )
    if form.is_valid():
        try:
            services.sender_identity_update(tenant=request.tenant, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            identity = selectors.sender_identity_get(tenant=request.tenant)
            if identity.pending_sender_email:
                messages.info(
                    request,
                    f"Sender saved. We emailed a link to {identity.pending_sender_email}: "
                    "messages come from it once someone there confirms it.",
                )
            else:
                messages.success(request, "Sender saved. The next message goes out with it.")
            return redirect("sending_settings", tenant_slug=request.tenant.slug)
    return _sending_settings_page(request, sender_form=form, status=400)


@require_POST
@role_required(Role.ADMIN)
def sender_email_resend(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The link that confirms the pending From address, again."""
    identity = selectors.sender_identity_get(tenant=request.tenant)
    if not identity.pending_sender_email:
        messages.info(request, "No sender address is waiting for confirmation.")
    elif sender_verification.sender_email_verification_resend(
        tenant=request.tenant, identity=identity
    ):
        messages.success(request, f"We sent a new link to {identity.pending_sender_email}.")
    else:
        messages.info(request, "A link went out less than a minute ago: check that inbox first.")
    return redirect("sending_settings", tenant_slug=request.tenant.slug)


@require_POST
@role_required(Role.ADMIN)
def sender_email_cancel(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """Forget the pending From address (its link stops working)."""
    identity = selectors.sender_identity_get(tenant=request.tenant)
    if identity.pending_sender_email:
        services.sender_email_change_cancel(tenant=request.tenant)
        messages.success(request, f"Cancelled: messages keep coming from {identity.from_email}.")
    return redirect("sending_settings", tenant_slug=request.tenant.slug)


def _suppressions_page(
    request: TenantRequest, *, form: SuppressionForm, status: int = 200
) -> HttpResponse:
    search_form = SuppressionSearchForm(request.GET or None)
    search = search_form.cleaned_data.get("q", "") if search_form.is_valid() else ""
    qs = selectors.suppression_list(tenant=request.tenant, search=search)
    page = keyset_page(qs, field="created_at", cursor=request.GET.get("after"), size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("after", None)
    ctx = {
        "form": form,
        "search_form": search_form,
        "page": page,
        "query": query.urlencode(),
        "can_manage": request.membership.can_manage,
    }
    template = "messaging/suppressions.html"
    if request.htmx and request.htmx.target == "suppression-results":
        template += "#results"
    return render(request, template, ctx, status=status)


@require_GET
def suppression_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _suppressions_page(request, form=SuppressionForm())


@require_POST
@role_required(Role.ADMIN)
def suppression_add(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = SuppressionForm(request.POST)
    if not form.is_valid():
        return _suppressions_page(request, form=form, status=400)
    suppression, created = services.suppression_add(
        tenant=request.tenant,
        address=form.cleaned_data["address"],
        reason=Suppression.Reason.MANUAL,
        detail=form.cleaned_data["detail"],
    )
    if created:
        messages.success(request, f"No message will go to {suppression.address} any more.")
    else:
        messages.info(
            request,
            f"{suppression.address} was already suppressed "
            f"({suppression.get_reason_display().lower()}).",
        )
    return redirect("suppression_list", tenant_slug=request.tenant.slug)


@require_POST
@role_required(Role.ADMIN)
def suppression_remove(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    suppression = selectors.suppression_get(
        tenant=request.tenant, address=request.POST.get("address", "")
    )
    services.suppression_remove(tenant=request.tenant, suppression=suppression)
    messages.success(request, f"Messages may go to {suppression.address} again.")
    return redirect("suppression_list", tenant_slug=request.tenant.slug)
