"""Writes for people's accounts: proving an email address is theirs, and telling the owner of
an address that someone tried to sign up with it.

A verification link is `/accounts/verify/<user public id>/<token>/`. The token is an HMAC (the
password-reset token scheme, its own salt) over the user, their address and whether it is
verified yet, stamped with its time: it is good for one address of one user, expires after
PASSWORD_RESET_TIMEOUT (3 days by default), and stops working once used.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timezone import now

from accounts.models import User
from core.throttle import once_per

# A person may ask for the link again at most this often (each one is an email to that address).
RESEND_INTERVAL_SECONDS = 60


class _EmailVerificationTokens(PasswordResetTokenGenerator):
    key_salt = "accounts.services.EmailVerificationTokens"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        verified = user.email_verified_at
        stamp = "" if verified is None else verified.replace(microsecond=0, tzinfo=None)
        return f"{user.pk}{user.email}{stamp}{timestamp}"


_tokens = _EmailVerificationTokens()


def user_email_verified(user: Any) -> bool:
    """Whether `user` (anonymous or signed in) proved their address: the condition for any real
    send (Send test now, campaigns and journeys later)."""
    return bool(getattr(user, "is_authenticated", False) and user.email_verified_at)


def email_verification_url(*, user: User) -> str:
    path = reverse("email_verify", args=[user.public_id, _tokens.make_token(user)])
    return f"{settings.SITE_URL}{path}"


def _send(*, user: User, template: str, context: dict[str, Any]) -> None:
    context = {"site_url": settings.SITE_URL, "email": user.email, **context}
    subject = render_to_string(f"registration/{template}_subject.txt", context)
    body = render_to_string(f"registration/{template}_email.txt", context)
    send_mail(" ".join(subject.split()), body, None, [user.email])


def email_verification_send(*, user: User) -> None:
    """Email `user` the link that confirms their address."""
    _send(
        user=user,
        template="email_verification",
        context={"url": email_verification_url(user=user)},
    )


def email_verification_resend(*, user: User) -> bool:
    """The link again, unless one went out in the last minute or the address is confirmed
    already. Returns whether it was sent."""
    if user.email_verified_at is not None:
        return False
    if not once_per(f"wf:accounts:verify-resend:{user.pk}", RESEND_INTERVAL_SECONDS):
        return False
    email_verification_send(user=user)
    return True


def email_verification_user(*, public_id: UUID, token: str) -> User | None:
    """The user a verification link is for, if the link is valid (right user and address, not
    expired, not used); None otherwise. Changes nothing: the link's page asks first."""
    user = User.objects.filter(public_id=public_id, is_active=True).first()
    if user is None or user.email_verified_at is not None or not _tokens.check_token(user, token):
        return None
    return user


def user_email_verify(*, public_id: UUID, token: str) -> User | None:
    """Confirm the address a valid link is for; returns its user, or None for a link that is
    forged, expired, used already or meant for another address."""
    user = email_verification_user(public_id=public_id, token=token)
    if user is None:
        return None
    stamp = now()
    # Conditional: two clicks at once confirm once (and the second finds the link used).
    if not User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(
        email_verified_at=stamp
    ):
        return None
    user.email_verified_at = stamp
    return user


def signup_attempt_notify(*, user: User) -> None:
    """Someone signed up with the address of an existing account: the page they see says only
    "check your inbox" (it must not reveal that the account exists); the owner is told here."""
    _send(
        user=user,
        template="signup_exists",
        context={
            "login_url": f"{settings.SITE_URL}{reverse('login')}",
            "reset_url": f"{settings.SITE_URL}{reverse('password_reset')}",
        },
    )
