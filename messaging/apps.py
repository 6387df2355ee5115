from __future__ import annotations

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # The channels register their senders; receivers connect to audience's and anymail's
        # signals; "can receive <channel>" joins segments' condition kinds.
        from messaging import (  # noqa: F401
            email_channel,
            push,
            receivers,
            segment_conditions,
            webhooks,
        )
