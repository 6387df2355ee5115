"""The email service providers' tracking webhooks (/anymail/<esp>/tracking/), refused unless
they are authenticated.

django-anymail's own views check a provider's basic auth (`ANYMAIL_WEBHOOK_SECRET`) or signature
only when it is configured: with nothing set they take any POST, and the delivery id an event
needs is in every email's headers, so anyone could suppress any address or revoke consent. Here
each provider's view answers 403 and changes nothing until what authenticates it is configured;
then anymail validates it (a wrong or missing secret or signature is a 400, anymail's
`AnymailWebhookValidationFailure`). A payload anymail cannot read is a 400 too, not a 500.

Only the tracking views are mounted: Wayfarer receives no inbound mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailWebhookValidationFailure,
)
from anymail.utils import get_anymail_setting
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailCoreWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailersend import MailerSendTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.mailtrap import MailtrapTrackingWebhookView
from anymail.webhooks.mandrill import MandrillCombinedWebhookView
from anymail.webhooks.postal import PostalTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from anymail.webhooks.sendinblue import SendinBlueTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from anymail.webhooks.unisender_go import UnisenderGoTrackingWebhookView
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

log = logging.getLogger(__name__)

# What a provider's payload may raise while anymail reads it: the request's fault, not ours.
_MALFORMED = (AnymailError, ValueError, TypeError, KeyError, IndexError, AttributeError)


@dataclass(frozen=True)
class Esp:
    """One provider's tracking webhook: anymail's view, and the anymail settings (without the
    ANYMAIL_ prefix) of which one must be set for it to be authenticated."""

    view: type[AnymailCoreWebhookView]
    esp_name: str  # anymail's, for its settings: "Amazon SES" reads AMAZON_SES_…
    # The provider's own signature settings: any one of them authenticates its webhook.
    signature: tuple[str, ...] = ()
    # Whether anymail checks WEBHOOK_SECRET (basic auth) for it: then that alone also does.
    basic_auth: bool = True

    def configured(self) -> bool:
        if self.basic_auth and get_anymail_setting("webhook_secret", default=None):
            return True
        return any(
            get_anymail_setting(name, esp_name=self.esp_name, default=None, allow_bare=True)
            for name in self.signature
        )

    def settings_hint(self) -> str:
        names = [
            f"ANYMAIL_{self.esp_name.upper().replace(' ', '_')}_{n.upper()}" for n in self.signature
        ]
        if self.basic_auth:
            names.append("ANYMAIL_WEBHOOK_SECRET")
        return " or ".join(names)


# The providers anymail 15 has tracking webhooks for. Postmark, Mailjet, SparkPost, Brevo and
# Amazon SES sign nothing anymail checks (SES's SNS signature is not verified): basic auth only.
# Mailgun, MailerSend, Mandrill, Postal and Unisender Go cannot run without their signing key.
ESPS: dict[str, Esp] = {
    "amazon_ses": Esp(AmazonSESTrackingWebhookView, "Amazon SES"),
    "brevo": Esp(BrevoTrackingWebhookView, "Brevo"),
    "sendinblue": Esp(SendinBlueTrackingWebhookView, "SendinBlue"),
    "mailersend": Esp(MailerSendTrackingWebhookView, "MailerSend", ("signing_secret",), False),
    "mailgun": Esp(
        MailgunTrackingWebhookView, "Mailgun", ("webhook_signing_key", "api_key"), False
    ),
    "mailjet": Esp(MailjetTrackingWebhookView, "Mailjet"),
    "mailtrap": Esp(MailtrapTrackingWebhookView, "Mailtrap", ("tracking_secret",)),
    "mandrill": Esp(MandrillCombinedWebhookView, "Mandrill", ("webhook_key",), False),
    "postal": Esp(PostalTrackingWebhookView, "Postal", ("webhook_key",), False),
    "postmark": Esp(PostmarkTrackingWebhookView, "Postmark"),
    "resend": Esp(ResendTrackingWebhookView, "Resend", ("signing_secret",)),
    "sendgrid": Esp(
        SendGridTrackingWebhookView, "SendGrid", ("tracking_webhook_verification_key",)
    ),
    "sparkpost": Esp(SparkPostTrackingWebhookView, "SparkPost"),
    "unisender_go": Esp(UnisenderGoTrackingWebhookView, "Unisender Go", ("api_key",), False),
}


def _hardened(view: type[AnymailCoreWebhookView]) -> Any:
    """anymail's view, answering 400 for a payload it cannot read instead of a 500."""

    class Hardened(view):
        def run_validators(self, request: HttpRequest) -> None:
            try:
                super().run_validators(request)
            except AnymailWebhookValidationFailure:
                raise
            except _MALFORMED as exc:
                raise AnymailWebhookValidationFailure(
                    f"Malformed {self.esp_name} webhook: {type(exc).__name__}"
                ) from exc

        def parse_events(self, request: HttpRequest) -> list[Any]:
            try:
                return list(super().parse_events(request))
            except (*_MALFORMED, AnymailConfigurationError) as exc:
                # e.g. Brevo's "your inbound webhook posts here", or a field of the wrong type
                raise AnymailWebhookValidationFailure(
                    f"Malformed {self.esp_name} webhook payload: {type(exc).__name__}"
                ) from exc

    Hardened.__name__ = Hardened.__qualname__ = f"Hardened{view.__name__}"
    return Hardened.as_view()


_VIEWS = {name: _hardened(esp.view) for name, esp in ESPS.items()}


@csrf_exempt
def esp_tracking_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    """POST /anymail/<esp>/tracking/: a provider's delivery, bounce, complaint, open, click and
    unsubscribe events (messaging/webhooks.py acts on them)."""
    found = ESPS.get(esp)
    if found is None:
        raise Http404("No such email provider webhook.")
    if not found.configured():
        log.warning("refused a %s webhook: set %s to receive it", esp, found.settings_hint())
        return HttpResponse(
            f"The {esp} webhook is not configured: set {found.settings_hint()} "
            "(docs/operations.md, “Email provider webhooks”).",
            status=403,
            content_type="text/plain",
        )
    response: HttpResponse = _VIEWS[esp](request)
    return response


def backend_esp() -> str | None:
    """The anymail provider EMAIL_BACKEND sends through ("postmark"), or None (SMTP, files)."""
    backend = str(getattr(settings, "EMAIL_BACKEND", ""))
    prefix = "anymail.backends."
    if not backend.startswith(prefix):
        return None
    return backend.removeprefix(prefix).split(".", 1)[0]


def webhook_status() -> dict[str, Any]:
    """For /healthz: whether the configured provider's tracking webhook can be received."""
    esp = backend_esp()
    if esp is None:
        return {"esp": None, "configured": None}
    found = ESPS.get(esp)
    return {
        "esp": esp,
        "configured": bool(found and found.configured()),
        "url": f"/anymail/{esp}/tracking/" if found else None,
        **({"settings": found.settings_hint()} if found else {}),
    }
