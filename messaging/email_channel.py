"""The email channel: Liquid → MIME (messaging/mail.py) → Django's email backend, one
connection per batch.

With the SMTP backend (the default) a message is handed over in two steps: everything up to the
end of DATA, then `handover()` (stamped durably), then the final "." that makes the server take
responsibility (RFC 5321 §4.1.1.4). A worker killed before the stamp never sent the "."; one
killed after it either did or was a few microseconds from it. That is the whole window in which a
crash can lose a message, and none in which it can send one twice (the duplicate problem of
RFC 1047). Other backends (anymail's ESP APIs, the file backend of the demo) are handed the
message right after the stamp.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from messaging import outcomes
from messaging.models import Channel, Delivery
from messaging.outbox import SendFailure, register

_LEADING_DOT = re.compile(rb"(?m)^\.")
_BARE_EOL = re.compile(rb"(?:\r\n|\n|\r(?!\n))")


@register(Channel.EMAIL)
class EmailSender:
    def __init__(self) -> None:
        self.backend: Any = None
        self.unreachable: SendFailure | None = None  # the batch's failed connect, if any

    def prepare(self, delivery: Delivery, context: dict[str, Any]) -> EmailMessage:
        from messaging.mail import email_build
        from messaging.rendering import render_email

        return email_build(delivery=delivery, rendered=render_email(delivery.content, context))

    def begin(self, deliveries: Any) -> None:
        """Nothing to load per batch: the connection is opened on the first message."""

    def _open(self) -> Any:
        if self.unreachable is not None:
            # One failed connect per run: the rest of the batch waits for the retry instead of
            # each waiting out EMAIL_TIMEOUT (which could outlast the claim's lease).
            raise self.unreachable
        if self.backend is None:
            self.backend = get_connection(fail_silently=False)
            try:
                self.backend.open()
            except (OSError, smtplib.SMTPException) as exc:
                self.backend = None
                self.unreachable = SendFailure(f"mail server unreachable: {exc}", retryable=True)
                raise self.unreachable from exc
            sock = getattr(getattr(self.backend, "connection", None), "sock", None)
            if sock is not None:
                # The message and its final "." are two writes (the handover sits between them):
                # with Nagle's algorithm the "." would wait for the server's delayed ACK of the
                # message, ~40 ms per message.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.backend

    def send(self, delivery: Delivery, prepared: EmailMessage, handover: Callable[[], None]) -> str:
        backend = self._open()
        if isinstance(backend, SMTPBackend) and backend.connection is not None:
            return self._send_smtp(backend, prepared, handover)
        handover()
        try:
            backend.send_messages([prepared])
        except Exception as exc:  # an ESP's API error: it was handed over, so never resent
            raise SendFailure(f"the email backend refused it: {exc}", retryable=False) from exc
        return str(
            (getattr(prepared, "anymail_status", None) and prepared.anymail_status.message_id)
            or prepared.extra_headers.get("Message-ID", "")
        )

    def _send_smtp(
        self, backend: SMTPBackend, message: EmailMessage, handover: Callable[[], None]
    ) -> str:
        smtp = backend.connection
        built = message.message()
        data = built.as_bytes(policy=built.policy.clone(linesep="\r\n"))
        try:
            # Envelope addresses as Django's SMTP backend gives them (IDNA domains, no names).
            sender = _envelope(message.from_email)
            recipient = _envelope(message.recipients()[0])
        except (ValueError, IndexError) as exc:
            raise SendFailure(f"unusable address: {exc}", retryable=False) from exc
        try:
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(sender)
            if code != 250:
                raise _refused(code, reply, "MAIL FROM")
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _refused(code, reply, "RCPT TO")
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise _refused(code, reply, "DATA")
            body = _LEADING_DOT.sub(b"..", _BARE_EOL.sub(b"\r\n", data))
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise SendFailure(f"mail server connection lost: {exc}", retryable=True) from exc
        except SendFailure:
            self._reset()
            raise
        except Exception as exc:  # mid-transaction: the connection's state is unknown
            self._drop()
            raise SendFailure(f"could not send: {exc!r}", retryable=False) from exc
        try:
            handover()
        except Exception:
            self._drop()  # mid-DATA: closing the connection is the only way to abort it
            raise
        try:
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Handed over: the server may have it. Counted as sent, never sent again.
            self._drop()
            return f"unconfirmed: {exc}"[:255]
        if code != 250:
            self._reset()
            raise _refused(code, reply, "end of DATA")
        return message.extra_headers.get("Message-ID", "") or reply.decode(errors="replace")[:255]

    def _reset(self) -> None:
        try:
            self.backend.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self.backend is not None:
            with contextlib.suppress(AttributeError, OSError):
                self.backend.connection.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                self.backend.close()
            self.backend = None

    def close(self) -> None:
        if self.backend is not None:
            try:
                self.backend.close()
            finally:
                self.backend = None


def _envelope(address: str) -> str:
    """The bare address for MAIL FROM / RCPT TO: no display name, the domain in IDNA."""
    addr = parseaddr(address)[1]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an email address")
    local.encode("ascii")  # a non-ASCII local part would need SMTPUTF8 (UnicodeError)
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _refused(code: int, reply: bytes, step: str) -> SendFailure:
    text = f"{step}: {code} {reply.decode(errors='replace')}"
    permanent = 500 <= code < 600
    return SendFailure(
        text,
        # A 4xx after the "." means the server did not take it: safe to try again later.
        retryable=not permanent,
        outcome=outcomes.EMAIL_BOUNCED if permanent and step == "RCPT TO" else "",
    )
