"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepted.

Used by the messaging tests (in-process) and by the kill -9 test and bench/send.py (as a
process of its own: `python -m tests.mail_sink --port N --out FILE` appends one JSON line per
accepted message).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int] = ("", 0)  # the sender's address: one per connection

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply for RCPT TO
    drop: set[str] = field(default_factory=set)  # addresses whose RCPT TO ends the connection
    data_reply: str = ""  # instead of "250 …" after the final "." (the message is kept)
    refuse_hello: set[int] = field(default_factory=set)  # connections (1, 2, …) told 421
    hellos: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.hellos += 1
        session.refused = self.hellos in self.refuse_hello
        if session.refused:
            return ["421 4.3.2 Busy, try later"]
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        if getattr(session, "refused", False):
            return "421 4.3.2 Busy, try later"
        session.host_name = hostname
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.drop:
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    tuple(session.peer),
                )
            )
        return self.data_reply or "250 Message accepted for delivery"


class _LimitedSMTP(SMTP):
    """aiosmtpd's server, greeting with 421 beyond `limit` connections at once (as relays do)."""

    def __init__(self, handler: Any, sink: MailSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.sink.open_connections += 1

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.sink.open_connections -= 1

    async def _handle_client(self) -> None:
        limit = self.sink.max_connections
        if limit and self.sink.open_connections > limit:
            await self.push("421 4.7.0 Too many connections, try fewer")
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, sink: MailSink, **kwargs: Any) -> None:
        super().__init__(sink.handler, **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        return _LimitedSMTP(self.handler, self.sink, **self.SMTP_kwargs)


class MailSink:
    """`with MailSink() as sink:` a server on 127.0.0.1:`sink.port`; `sink.messages()`.
    `max_connections`: more at once are greeted with 421 (0: no limit)."""

    def __init__(self, port: int = 0, max_connections: int = 0) -> None:
        self.handler = _Handler()
        self.max_connections, self.open_connections = max_connections, 0
        self.controller = _Controller(self, hostname="127.0.0.1", port=port or _free_port())
        self.port = self.controller.port

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received()]

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        self.handler.refuse[address] = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"the mail sink got {len(self.received())} messages, not {count}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _FileHandler:
    """Appends `{"to": [...], "message_id": ..., "size": n}` per accepted message to a file."""

    def __init__(self, path: str) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115  (lives as long as the server)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = bytes(envelope.content).split(b"\r\n\r\n", 1)[0]
        parsed = email.message_from_bytes(head, policy=email.policy.compat32)
        line = {
            "to": list(envelope.rcpt_tos),
            "message_id": parsed.get("Message-ID", ""),
            "size": len(envelope.content),
        }
        self.out.write(json.dumps(line) + "\n")
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="file that gets a JSON line per message")
    args = parser.parse_args()
    controller = Controller(_FileHandler(args.out), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"mail sink listening on 127.0.0.1:{args.port}", flush=True)  # noqa: T201
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
