"""Webhook fixtures.

receiver: a real HTTP server on 127.0.0.1 (stdlib, in a thread) that verifies every request's
    Standard Webhooks signature with `standardwebhooks.Webhook.verify`, as a customer's would.
    `receiver.url`, `receiver.answers` (statuses to give, in order; then 200),
    `receiver.verified` (payloads whose signature held), `receiver.rejected` (why others failed),
    `receiver.requests` (headers and body of each). Turns the guard's loopback allowance on
    (settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE), as the journey webhook tests do.
endpoint_factory(**fields): an endpoint of acme's through the service, pointing at the receiver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = field(default_factory=list)  # tried in turn, as after a rotation
    answers: list[int] = field(default_factory=list)
    verified: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def types(self) -> list[str]:
        return [p["type"] for p in self.verified]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = dict(self.headers)
            receiver.requests.append((headers, body))
            status = receiver.answers.pop(0) if receiver.answers else 200
            if status < 300:
                errors = []
                for secret in receiver.secrets:
                    try:
                        receiver.verified.append(Webhook(secret).verify(body, headers))
                        break
                    except WebhookVerificationError as exc:
                        errors.append(str(exc))
                else:
                    receiver.rejected.append("; ".join(errors) or "no secret")
                    status = 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
    found = Receiver()
    server = HTTPServer(("127.0.0.1", 0), _handler(found))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint_factory(world: Any, receiver: Receiver) -> Callable[..., Any]:
    from webhooks import services
    from webhooks.models import EventType

    def make(**fields: Any) -> Any:
        fields.setdefault("tenant", world.acme)
        fields.setdefault("url", receiver.url)
        fields.setdefault("event_types", list(EventType.values))
        endpoint = services.endpoint_create(**fields)
        receiver.secrets.append(endpoint.secret)
        return endpoint

    return make
