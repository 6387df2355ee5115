"""HTML views of the product shell: sign-up, choosing a team, and the tenant settings pages
(the team's home page, its dashboard, is analytics's: analytics/views.py).

Tenant URLs take `tenant_slug`; TenantMiddleware has set `request.tenant` and
`request.membership` (or answered 302/403/404) before any of these run.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from core import throttle
from core.forms import add_service_errors
from core.throttle import rate_limited
from tenants import selectors, services
from tenants.decorators import HtmxRequest, TenantRequest, UserRequest, role_required
from tenants.forms import (
    ApiKeyCreateForm,
    InvitationAcceptForm,
    MemberAddForm,
    MemberRoleForm,
    RetentionForm,
    SignUpForm,
    TenantCreateForm,
    TenantSettingsForm,
)
from tenants.middleware import LAST_TENANT_SESSION_KEY
from tenants.models import Invitation, Role, Tenant, retention_months_default
from tenants.registry import RETENTION_PREVIEWS

SIGNUP_EMAIL_SESSION_KEY = "wayfarer.signup_email"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"  # the link proved who they are


def _partial(request: HtmxRequest, template: str, partial: str) -> str:
    """The whole page, or only the named partial for an htmx request that targets it."""
    return f"{template}#{partial}" if request.htmx and not request.htmx.boosted else template


@require_GET
@login_required
def home(request: UserRequest) -> HttpResponse:
    memberships = list(selectors.memberships_for_user(user=request.user))
    if not memberships:
        return redirect("tenant_new")
    last = request.session.get(LAST_TENANT_SESSION_KEY)
    chosen = next((m for m in memberships if m.tenant.slug == last), memberships[0])
    return redirect("dashboard", tenant_slug=chosen.tenant.slug)


@require_http_methods(["GET", "POST"])
@rate_limited(throttle.SIGNUP, key=throttle.client_network)  # posts per client address
def signup(request: HttpRequest) -> HttpResponse:
    """A new team and its owner. The answer to a valid form is always "check your inbox", for an
    address that has an account too (its owner is emailed instead): sign-up does not tell
    anyone which addresses have accounts. The new owner signs in through the emailed link (or
    with their password)."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.user_sign_up(
                email=data["email"],
                password=data["password1"],
                tenant_name=data["name"],
                tenant_slug=data["slug"] or services.suggest_slug(data["name"]),
                timezone_name=data["timezone"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            request.session[SIGNUP_EMAIL_SESSION_KEY] = data["email"]
            return redirect("signup_done")
    return render(request, "tenants/signup.html", {"form": form})


@require_GET
def signup_done(request: HttpRequest) -> HttpResponse:
    email = request.session.get(SIGNUP_EMAIL_SESSION_KEY, "")
    return render(request, "tenants/signup_done.html", {"email": email})


@require_http_methods(["GET", "POST"])
@login_required
def tenant_new(request: UserRequest) -> HttpResponse:
    form = TenantCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            tenant = services.tenant_create(
                name=data["name"],
                slug=data["slug"] or services.suggest_slug(data["name"]),
                owner=request.user,
                timezone_name=data["timezone"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{tenant.name} is ready.")
            return redirect("dashboard", tenant_slug=tenant.slug)
    return render(request, "tenants/tenant_new.html", {"form": form})


@require_http_methods(["GET", "POST"])
def tenant_settings(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    """The team's name and zone, and its data retention (two forms, one page). Everyone sees
    them; admins and owners change them. An htmx GET aimed at #retention-preview answers with
    what the months typed would remove."""
    tenant = request.tenant
    form = TenantSettingsForm(instance=tenant)
    retention_form = RetentionForm(
        initial={"event_retention_months": tenant.event_retention_months}
    )
    if request.method == "POST":
        if not request.membership.can_manage:
            raise PermissionDenied("Changing team settings needs the admin role.")
        if request.POST.get("section") == "retention":
            retention_form = RetentionForm(request.POST)
            if _retention_save(request, retention_form):
                return redirect(reverse("tenant_settings", args=[tenant.slug]) + "#retention")
        else:
            form = TenantSettingsForm(request.POST, instance=tenant)
            if form.is_valid():
                try:
                    services.tenant_update(tenant=tenant, actor=request.user, **form.cleaned_data)
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    messages.success(request, "Settings saved.")
                    return redirect("tenant_settings", tenant_slug=tenant.slug)
            tenant.refresh_from_db()  # the invalid values must not leak into the page's header
    elif request.htmx and request.htmx.target == "retention-preview":
        retention_form = RetentionForm(request.GET)
        ctx = _retention_context(tenant, retention_form)
        return render(request, "tenants/settings.html#retention_preview", ctx)
    ctx = {"form": form, "tab": "general", **_retention_context(tenant, retention_form)}
    return render(request, "tenants/settings.html", ctx)


def _retention_preview(tenant: Tenant, months: int) -> Any:
    """audience.retention.retention_preview, registered by audience (tenants/registry.py)."""
    return RETENTION_PREVIEWS[0](tenant, months) if RETENTION_PREVIEWS else None


def _retention_context(tenant: Tenant, retention_form: RetentionForm) -> dict[str, Any]:
    """What the "Data retention" section shows: the setting and, for a bound form, what its
    months would remove (the form's errors instead when they are not valid)."""
    default, current = retention_months_default(), tenant.retention_months
    ctx: dict[str, Any] = {
        "retention_form": retention_form,
        "retention_default": default,
        "retention_current": current,
    }
    # Bound: typed (a preview) or posted (a refused save, e.g. for want of the confirmation
    # box: show what it would remove beside the box).
    months_valid = retention_form.is_bound and "event_retention_months" not in retention_form.errors
    if months_valid:
        months = retention_form.months() or default
        shown = _retention_preview(tenant, months)
        ctx.update(
            retention_preview=shown,
            retention_months=months,
            retention_removes=_removes_beyond_current(tenant, shown, months, current),
        )
    return ctx


def _removes_beyond_current(tenant: Tenant, shown: Any, months: int, current: int) -> int:
    """Stored events that `months` would remove and the current setting keeps."""
    if shown is None or months >= current or not shown.events:
        return 0
    now_kept = _retention_preview(tenant, current)
    return max(shown.events - now_kept.events, 0) if now_kept else shown.events


def _retention_save(request: TenantRequest, retention_form: RetentionForm) -> bool:
    tenant = request.tenant
    if not retention_form.is_valid():
        return False
    months = retention_form.months()
    default, current = retention_months_default(), tenant.retention_months
    shown = _retention_preview(tenant, months or default)
    if not retention_form.require_confirmation(
        _removes_beyond_current(tenant, shown, months or default, current)
    ):
        return False
    try:
        services.tenant_update(tenant=tenant, actor=request.user, event_retention_months=months)
    except ValidationError as exc:
        add_service_errors(retention_form, exc)
        tenant.refresh_from_db()
        return False
    kept = f"{months} months" if months else f"the default, {default} months"
    messages.success(request, f"Data retention saved: raw events are kept for {kept}.")
    return True


# --- Members ---------------------------------------------------------------------------------


def _members_page(request: TenantRequest, form: MemberAddForm | None = None) -> HttpResponse:
    ctx = {
        "tab": "members",
        "members": selectors.membership_list(tenant=request.tenant),
        "invitations": selectors.invitation_list(tenant=request.tenant),
        "form": form or MemberAddForm(),
        "roles": Role.choices,
    }
    status = 400 if form is not None and form.errors else 200
    return render(
        request, _partial(request, "tenants/members.html", "members_panel"), ctx, status=status
    )


@require_GET
def member_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _members_page(request)


@require_POST
@role_required(Role.ADMIN)
def member_add(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = services.member_invite(
                tenant=request.tenant,
                actor_membership=request.membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if isinstance(added, Invitation):
                messages.success(
                    request,
                    f"Invitation sent to {added.email}: its link creates their account and "
                    f"makes them {added.get_role_display().lower()} here. It works once, until "
                    f"{date_format(localtime(added.expires_at), 'j M Y')}.",
                )
            else:
                messages.success(request, f"{added.user.email} joined as {added.role}.")
            return _after_member_change(request)
    return _members_page(request, form)


@require_POST
@role_required(Role.ADMIN)
def invitation_revoke(request: TenantRequest, tenant_slug: str, invitation_id: str) -> HttpResponse:
    invitation = selectors.invitation_get(tenant=request.tenant, public_id=invitation_id)
    try:
        services.invitation_revoke(tenant=request.tenant, invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The invitation to {invitation.email} was withdrawn.")
    return _after_member_change(request)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, team: str, secret: str) -> HttpResponse:
    """The link in an invitation email: a new account (name and password), or, signed in with
    the invited address, one button. Single use; an old, withdrawn or used link says so."""
    invitation = selectors.invitation_for_link(team=team, secret=secret)
    if invitation is None:
        return render(request, "tenants/invitation_accept.html", {"state": "unknown"}, status=404)
    ctx: dict[str, Any] = {"invitation": invitation, "team": invitation.tenant}
    if not invitation.pending:
        if invitation.accepted_at is not None:
            ctx["state"] = "used"
        else:
            ctx["state"] = "withdrawn" if invitation.revoked_at is not None else "expired"
        return render(request, "tenants/invitation_accept.html", ctx, status=410)
    user = request.user if request.user.is_authenticated else None
    has_account = user is None and User.objects.filter(email__iexact=invitation.email).exists()
    form = InvitationAcceptForm(request.POST or None) if user is None else None
    ctx.update(form=form, signed_in=user, has_account=has_account, state="open")
    if user is not None and user.email.lower() != invitation.email.lower():
        ctx["state"] = "other_user"
    if request.method == "POST" and ctx["state"] == "open" and not has_account:
        if form is None or form.is_valid():
            data = form.cleaned_data if form is not None else {}
            try:
                membership = services.invitation_accept(
                    invitation=invitation,
                    user=user,
                    password=data.get("password1", ""),
                    first_name=data.get("first_name", ""),
                    last_name=data.get("last_name", ""),
                )
            except ValidationError as exc:
                if form is None:
                    messages.error(request, " ".join(exc.messages))
                    return redirect("invitation_accept", team=team, secret=secret)
                add_service_errors(form, exc)
            else:
                if user is None:
                    login(request, membership.user, backend=MODEL_BACKEND)
                messages.success(request, f"Welcome to {membership.tenant.name}.")
                return redirect("dashboard", tenant_slug=membership.tenant.slug)
        return render(request, "tenants/invitation_accept.html", ctx, status=400)
    return render(request, "tenants/invitation_accept.html", ctx)


@require_POST
@role_required(Role.ADMIN)
def member_role(request: TenantRequest, tenant_slug: str, member_id: str) -> HttpResponse:
    membership = selectors.membership_get(tenant=request.tenant, public_id=member_id)
    form = MemberRoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"role": "Choose one of the roles."})
        services.membership_change_role(
            tenant=request.tenant,
            actor_membership=request.membership,
            membership=membership,
            role=form.cleaned_data["role"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    return _after_member_change(request)


@require_POST
@role_required(Role.ADMIN)
def member_remove(request: TenantRequest, tenant_slug: str, member_id: str) -> HttpResponse:
    membership = selectors.membership_get(tenant=request.tenant, public_id=member_id)
    try:
        services.membership_remove(
            tenant=request.tenant, actor_membership=request.membership, membership=membership
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user.email} was removed.")
        if membership.user_id == request.user.id:  # left the team: nothing more to see here
            if request.htmx:
                return HttpResponseClientRedirect(reverse("home"))
            return redirect("home")
    return _after_member_change(request)


def _after_member_change(request: TenantRequest) -> HttpResponse:
    if request.htmx:
        return _members_page(request)
    return redirect("member_list", tenant_slug=request.tenant.slug)


# --- API keys --------------------------------------------------------------------------------


def _api_keys_page(
    request: TenantRequest,
    form: ApiKeyCreateForm | None = None,
    created: tuple[object, str] | None = None,
) -> HttpResponse:
    ctx = {
        "tab": "api_keys",
        "keys": selectors.api_key_list(tenant=request.tenant),
        "form": form or ApiKeyCreateForm(),
        "created_key": created[0] if created else None,
        "raw_key": created[1] if created else None,
    }
    status = 400 if form is not None and form.errors else 200
    response = render(
        request, _partial(request, "tenants/api_keys.html", "keys_panel"), ctx, status=status
    )
    if created:
        response["Cache-Control"] = "no-store"  # the raw key must not linger in any cache
    return response


@require_GET
def api_key_list(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    return _api_keys_page(request)


@require_POST
@role_required(Role.ADMIN)
def api_key_create(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _api_keys_page(request, form)
    key, raw = services.api_key_create(
        tenant=request.tenant,
        kind=form.cleaned_data["kind"],
        name=form.cleaned_data["name"],
        actor=request.user,
    )
    # Rendered, not redirected: this response is the only place the raw key ever appears.
    return _api_keys_page(request, created=(key, raw))


@require_POST
@role_required(Role.ADMIN)
def api_key_revoke(request: TenantRequest, tenant_slug: str, key_id: str) -> HttpResponse:
    key = selectors.api_key_get(tenant=request.tenant, public_id=key_id)
    services.api_key_revoke(tenant=request.tenant, api_key=key)
    messages.success(request, f"“{key.name}” is revoked; requests with it now get 401.")
    if request.htmx:
        return _api_keys_page(request)
    return redirect("api_key_list", tenant_slug=request.tenant.slug)
