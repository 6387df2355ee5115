"""The email channel: Liquid → MIME (messaging/mail.py) → Django's email backend.

With the SMTP backend (the default) the sender keeps up to MESSAGING_SMTP_CONNECTIONS
connections open and sends a group of messages at once, one per connection, step by step:
MAIL FROM on every connection, then the replies; RCPT TO; DATA; each message up to the end of
its DATA; then `handover()` stamps the whole group durably (one commit); then the final "." on
every connection, which makes the server take responsibility (RFC 5321 §4.1.1.4), and the
replies. While the server works on a step, the outbox prepares the next messages (`idle()`).

A worker killed before the stamp never sent a ".", so the group is sent again by another
worker; one killed after it either sent them or was a few microseconds from it. That is the
whole window in which a crash can lose messages, and none in which it can send one twice (the
duplicate problem of RFC 1047). Other backends (anymail's ESP APIs, the file backend of the
demo) are handed each message right after the group's stamp.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.utils.module_loading import import_string

from messaging import outcomes
from messaging.mail import BARE_ADDRESS
from messaging.models import Channel, Delivery, SenderIdentity
from messaging.outbox import (
    Handover,
    Outcome,
    Reclaimed,
    SendFailure,
    idle_until_answered,
    register,
)
from messaging.selectors import sender_identity_get

log = logging.getLogger(__name__)


def smtp_connections() -> int:
    """How many connections one sender keeps to the SMTP server (and messages it sends at
    once). Relays limit connections per client (Postfix: 50 by default)."""
    return max(1, int(getattr(settings, "MESSAGING_SMTP_CONNECTIONS", 8)))


@dataclass(frozen=True)
class PreparedEmail:
    message: EmailMessage  # what any Django email backend sends
    sender: str = ""  # with the SMTP backend: the envelope and the DATA bytes
    recipient: str = ""
    data: bytes = b""


@register(Channel.EMAIL)
class EmailSender:
    def __init__(self) -> None:
        self.uses_smtp = issubclass(import_string(settings.EMAIL_BACKEND), SMTPBackend)
        self.group_size = smtp_connections() if self.uses_smtp else 1
        self.backends: list[Any] = []  # open connections, by position in a group
        self.unreachable: SendFailure | None = None  # the run's failed connect, if any
        self.senders: dict[int, SenderIdentity] = {}  # the batch's tenants' From and Reply-To

    def prepare(self, delivery: Delivery, context: dict[str, Any]) -> PreparedEmail:
        from messaging.mail import email_build
        from messaging.rendering import render_email

        message = email_build(
            delivery=delivery,
            rendered=render_email(delivery.content, context),
            sender=self.senders.get(delivery.tenant_id),
        )
        if not self.uses_smtp:
            return PreparedEmail(message)
        try:
            # Envelope addresses as Django's SMTP backend gives them (IDNA domains, no names).
            sender = _envelope(message.from_email)
            recipient = _envelope(message.recipients()[0])
        except (ValueError, IndexError) as exc:
            raise SendFailure(f"unusable address: {exc}", retryable=False) from exc
        data = message.smtp_data()
        if data is None:  # not on the fast path: Django's own MIME, in full
            data = _smtp_data(message.message())
        return PreparedEmail(message, sender, recipient, data)

    def begin(self, deliveries: Any) -> None:
        """Load the sender identity of the batch's tenants, one query each (a change applies
        from the next batch). Connections are opened when first needed."""
        tenants = {d.tenant_id: d.tenant for d in deliveries}
        self.senders = {pk: sender_identity_get(tenant=t) for pk, t in tenants.items()}

    def send_group(
        self, group: list[tuple[Delivery, PreparedEmail]], handover: Handover, idle: Any
    ) -> list[Outcome]:
        results: list[Outcome] = []
        while len(results) < len(group):
            rest = group[len(results) :]
            try:
                # Fewer connections than messages (the server refused more): in rounds.
                opened = self._open(len(rest))
            except SendFailure as exc:
                return results + [exc] * len(rest)
            if not self.uses_smtp:
                return results + self._send_one_by_one(rest, handover)
            results += _SmtpRound(self, rest[:opened], handover, idle).run()
        return results

    def _send_one_by_one(
        self, group: list[tuple[Delivery, PreparedEmail]], handover: Handover
    ) -> list[Outcome]:
        backend = self.backends[0]
        mine = {d.pk for d in handover([d for d, _ in group])}
        results: list[Outcome] = []
        for d, prepared in group:
            if d.pk not in mine:
                results.append(Reclaimed(f"delivery {d.pk} was reclaimed"))
                continue
            message = prepared.message
            try:
                backend.send_messages([message])
            except Exception as exc:  # an ESP's API error: it was handed over, never resent
                results.append(SendFailure(f"the email backend refused it: {exc}", retryable=False))
                continue
            status = getattr(message, "anymail_status", None)
            results.append(
                str((status and status.message_id) or message.extra_headers.get("Message-ID", ""))
            )
        return results

    def _open(self, wanted: int) -> int:
        """Open connections up to `wanted` (at most the group size); returns how many are open.
        Raises SendFailure when not even one is."""
        if self.unreachable is not None:
            # One failed connect per run: the rest of the batch waits for the retry instead of
            # each message waiting out EMAIL_TIMEOUT (which could outlast the claim's lease).
            raise self.unreachable
        while len(self.backends) < min(wanted, self.group_size):
            backend = get_connection(fail_silently=False)
            try:
                backend.open()
                smtp: Any = getattr(backend, "connection", None)  # the SMTP backend's smtplib.SMTP
                sock = getattr(smtp, "sock", None)
                if sock is not None:
                    # A message and its final "." are two writes (the handover sits between
                    # them): with Nagle's algorithm the "." would wait for the server's delayed
                    # ACK of the message, ~40 ms per message.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    smtp.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as exc:
                with contextlib.suppress(Exception):
                    backend.close()
                if self.backends:  # the server takes fewer connections: make do with those
                    self.group_size = len(self.backends)
                    break
                self.unreachable = SendFailure(f"mail server unreachable: {exc}", retryable=True)
                raise self.unreachable from exc
            self.backends.append(backend)
        return len(self.backends)

    def drop(self, position: int) -> None:
        """Close a connection whose state is unknown; it is opened again when needed."""
        backend = self.backends.pop(position)
        with contextlib.suppress(AttributeError, OSError):
            backend.connection.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            backend.close()

    def close(self) -> None:
        backends, self.backends = self.backends, []
        for backend in backends:
            with contextlib.suppress(Exception):
                backend.close()


class _SmtpRound:
    """One message per open connection, every step on all connections before the next step."""

    def __init__(
        self,
        sender: EmailSender,
        group: list[tuple[Delivery, PreparedEmail]],
        handover: Handover,
        idle: Callable[[], bool],
    ) -> None:
        self.sender, self.group, self.handover, self.idle = sender, group, handover, idle
        self.smtp = [b.connection for b in sender.backends[: len(group)]]
        self.results: list[Outcome | None] = [None] * len(group)
        self.broken: set[int] = set()  # connections to drop at the end of the round

    def run(self) -> list[Outcome]:
        try:
            live = list(range(len(self.group)))
            live = self._step(live, lambda p: ("mail", f"FROM:<{p.sender}>"), (250,), "MAIL FROM")
            live = self._step(
                live, lambda p: ("rcpt", f"TO:<{p.recipient}>"), (250, 251), "RCPT TO"
            )
            live = self._step(live, lambda p: ("data", ""), (354,), "DATA")
            live = [i for i in live if self._write(i, self.group[i][1].data)]
            self._hand_over(live)
            self._finish(live)
        except Exception as exc:  # a bug, or an error of a kind not foreseen: states unknown
            log.exception("SMTP round failed")
            for i, (d, _) in enumerate(self.group):
                self.broken.add(i)
                if self.results[i] is None:
                    self.results[i] = (
                        f"unconfirmed: {exc!r}"[:255]  # handed over: it may have left
                        if d.handed_over_at is not None
                        else SendFailure(f"could not send: {exc!r}", retryable=True)
                    )
        for i in sorted(self.broken, reverse=True):
            self.sender.drop(i)
        unsent = SendFailure("not sent", retryable=True)
        return [unsent if r is None else r for r in self.results]

    def _step(
        self,
        live: list[int],
        command: Callable[[PreparedEmail], tuple[str, str]],
        accepted: tuple[int, ...],
        step: str,
    ) -> list[int]:
        sent = [i for i in live if self._write(i, None, command(self.group[i][1]))]
        replies = self._replies(sent)
        ok = []
        for i, reply in replies:
            code, text = reply
            if code in accepted:
                ok.append(i)
            elif 400 <= code < 600:
                self.results[i] = _refused(code, text, step)
                self._reset(i)
            else:  # not a reply to this command (-1: unreadable): out of step
                self._lost(i, smtplib.SMTPResponseException(code, text))
        return ok

    def _write(self, i: int, data: bytes | None, command: tuple[str, str] | None = None) -> bool:
        try:
            if command is not None:
                self.smtp[i].putcmd(*command)
            else:
                self.smtp[i].send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._lost(i, exc)
            return False
        return True

    def _replies(self, indices: list[int]) -> Iterator[tuple[int, tuple[int, bytes]]]:
        """Each connection's reply, preparing the next messages until all have arrived."""
        self._wait(indices)
        for i in indices:
            try:
                yield i, self.smtp[i].getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._lost(i, exc)

    def _wait(self, indices: list[int]) -> None:
        idle_until_answered([self.smtp[i].sock for i in indices], self.idle)

    def _hand_over(self, live: list[int]) -> None:
        try:
            mine = {d.pk for d in self.handover([self.group[i][0] for i in live])}
        except Exception as exc:
            # Mid-DATA: closing the connections is the only way to abort the messages.
            failure = SendFailure(f"could not record the handover: {exc}", retryable=True)
            for i in live:
                self.results[i] = failure
                self.broken.add(i)
            live.clear()
            return
        for i in list(live):
            d = self.group[i][0]
            if d.pk not in mine:
                self.results[i] = Reclaimed(f"delivery {d.pk} was reclaimed")
                self.broken.add(i)
                live.remove(i)

    def _finish(self, live: list[int]) -> None:
        """The final "." of each message, then the replies. Handed over: a message whose
        connection fails now is counted as sent (the server may have it), never sent again."""
        written = []
        for i in live:
            try:
                self.smtp[i].send(b".\r\n")
                written.append(i)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self.results[i] = f"unconfirmed: {exc}"[:255]
                self.broken.add(i)
        self._wait(written)
        for i in written:
            try:
                code, text = self.smtp[i].getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self.results[i] = f"unconfirmed: {exc}"[:255]
                self.broken.add(i)
                continue
            if 200 <= code < 300:
                message = self.group[i][1].message
                self.results[i] = message.extra_headers.get("Message-ID", "") or text.decode(
                    errors="replace"
                )
            elif 400 <= code < 600:  # the server says it did not take the message
                self.results[i] = _refused(code, text, "end of DATA")
                self._reset(i)
            else:  # a reply that says neither: the server may have it, never sent again
                self.results[i] = f"unconfirmed: {code} {text.decode(errors='replace')}"[:255]
                self.broken.add(i)

    def _lost(self, i: int, exc: BaseException) -> None:
        # Before the handover: the message surely did not go; try it again later.
        self.results[i] = SendFailure(f"mail server connection lost: {exc}", retryable=True)
        self.broken.add(i)

    def _reset(self, i: int) -> None:
        try:
            self.smtp[i].rset()
        except (smtplib.SMTPException, OSError):
            self.broken.add(i)


def _smtp_data(built: Any) -> bytes:
    """DATA bytes of a message from the email package: CRLF lines, leading dots doubled."""
    data = built.as_bytes(policy=built.policy.clone(linesep="\r\n"))
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _envelope(address: str) -> str:
    """The bare address for MAIL FROM / RCPT TO: no display name, the domain in IDNA."""
    if BARE_ADDRESS.fullmatch(address):
        return address
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
