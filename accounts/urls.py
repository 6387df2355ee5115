from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.urls import path

from accounts import views
from accounts.forms import EmailAuthenticationForm
from core import throttle
from core.throttle import rate_limited


def _reset_address(request: HttpRequest) -> str | None:
    return request.POST.get("email", "").strip().lower() or None


# Reset requests are limited per address (whether it has an account or not, so the limit tells
# nothing) and per client address: neither a mailbox nor the mail server can be flooded.
password_reset = rate_limited(throttle.PASSWORD_RESET_IP, key=throttle.client_network)(
    rate_limited(throttle.PASSWORD_RESET, key=_reset_address)(
        auth_views.PasswordResetView.as_view()
    )
)

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("verify/<uuid:public_id>/<str:token>/", views.email_verify, name="email_verify"),
    path("verify/resend/", views.email_verification_resend, name="email_verification_resend"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", password_reset, name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "password-change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password-change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
