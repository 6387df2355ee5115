from __future__ import annotations

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # The channels register their senders; receivers connect to audience's, tenants' and
        # anymail's signals; "can receive <channel>" joins segments' condition kinds; the
        # dashboard's "Getting started" list gets the sender's step.
        from audience.registry import event_summaries_register
        from messaging import (  # noqa: F401
            email_channel,
            push,
            receivers,
            segment_conditions,
            timeline,
            webhooks,
        )
        from messaging.selectors import sender_identity_is_set
        from tenants.registry import SetupStep, setup_step_register

        event_summaries_register(timeline.summaries)
        setup_step_register(
            SetupStep(
                text="Set the sender of your messages in",
                link_text="Messages → Sending settings",
                url_name="sending_settings",
                done=sender_identity_is_set,
            )
        )
