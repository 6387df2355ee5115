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


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply for RCPT TO

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


class MailSink:
    """`with MailSink() as sink:` a server on 127.0.0.1:`sink.port`; `sink.messages()`."""

    def __init__(self, port: int = 0) -> None:
        self.handler = _Handler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port or _free_port())
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
