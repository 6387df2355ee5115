"""Confirming a person's email address: the link from the sign-up email, and asking for it
again. The link's page asks before it confirms (GET shows, POST confirms): mail scanners open
links in incoming messages, and only a person should confirm."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.models import User


@require_http_methods(["GET", "POST"])
def email_verify(request: HttpRequest, public_id: UUID, token: str) -> HttpResponse:
    if request.method == "GET":
        user = services.email_verification_user(public_id=public_id, token=token)
        response = render(
            request,
            "registration/email_verify.html",
            {"link_user": user},
            status=200 if user else 400,
        )
    else:
        user = services.user_email_verify(public_id=public_id, token=token)
        if user is None:
            response = render(
                request, "registration/email_verify.html", {"link_user": None}, status=400
            )
        else:
            if not request.user.is_authenticated:
                # The link went to the address: following it proves the person, as a password
                # reset link does. It works once, so it cannot sign anyone in later.
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Thank you: {user.email} is confirmed.")
            return redirect("home")
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def email_verification_resend(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]  # login_required
    if services.user_email_verified(user):
        messages.info(request, "Your email address is confirmed already.")
    elif services.email_verification_resend(user=user):
        messages.success(request, f"We sent a new link to {user.email}. It works for three days.")
    else:
        messages.info(request, "A link went out less than a minute ago: check your inbox first.")
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if back and safe else "home")
