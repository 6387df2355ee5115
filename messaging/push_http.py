"""POSTs to push services, many at once over kept-alive connections (messaging/push.py).

`Poster.post_all()` writes every request of a group (one connection each, per push service)
before it reads any answer, so the services work on all of them while this worker prepares the
next messages (`idle()`), and a group's requests leave together right after its handover
stamp. Plain http.client: requests cannot write a request without waiting for its answer.

Connections to a push service go through the outbound guard (core.outbound.create_connection:
public addresses only, the checked address pinned, the peer checked before the request is
written); redirects are never followed (an answer is an answer). Through an HTTPS_PROXY the
proxy connects: the guard checks the service's addresses before the tunnel is asked for, and
the proxy, the operator's, is trusted to connect where it resolved.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import certifi

from core.outbound import create_connection, url_check
from messaging.outbox import idle_until_answered


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    text: str = ""


class Poster:
    """Up to `per_origin` kept-alive connections to each push service (scheme, host, port)."""

    def __init__(self, *, per_origin: int, timeout: float) -> None:
        self.per_origin, self.timeout = max(1, per_origin), timeout
        self.pool: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._tls: ssl.SSLContext | None = None

    def post_all(
        self, posts: list[Post], idle: Callable[[], bool] = lambda: False
    ) -> list[Answer | Exception]:
        """Each post's answer, or the exception that stands for none (no connection, a broken
        one, a timeout: the service may or may not have taken it)."""
        answers: list[Answer | Exception | None] = [None] * len(posts)
        waiting = list(range(len(posts)))
        while waiting:
            # One request per connection at a time: a round takes as many posts per service as
            # it has connections.
            taken: dict[tuple[str, str, int], int] = {}
            round_, waiting_next = [], []
            for i in waiting:
                origin = _origin(posts[i].url)
                slot = taken.get(origin, 0)
                if slot >= self.per_origin:
                    waiting_next.append(i)
                    continue
                taken[origin] = slot + 1
                try:
                    round_.append((i, self._connection(origin, slot)))
                except (OSError, ValueError) as exc:  # e.g. an unreadable CA bundle
                    answers[i] = exc
            # Later rounds follow at once: the messages were handed over together.
            self._round(posts, round_, answers, idle if not waiting_next else lambda: False)
            waiting = waiting_next
        return [a if a is not None else RuntimeError("no answer") for a in answers]

    def _round(
        self,
        posts: list[Post],
        round_: list[tuple[int, http.client.HTTPConnection]],
        answers: list[Answer | Exception | None],
        idle: Callable[[], bool],
    ) -> None:
        sent = []
        for i, conn in round_:
            parts = urlsplit(posts[i].url)
            path = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
            reused = conn.sock is not None
            for _attempt in range(2 if reused else 1):
                try:
                    conn.request("POST", path, body=posts[i].body, headers=posts[i].headers)
                    sent.append((i, conn))
                    break
                except (OSError, http.client.HTTPException) as exc:
                    # A kept-alive connection the service closed as the request was written:
                    # it was not read; once more on a new connection.
                    answers[i] = exc
                    conn.close()  # reconnects on its next request
        idle_until_answered([conn.sock for _i, conn in sent if conn.sock is not None], idle)
        for i, conn in sent:
            try:
                response = conn.getresponse()
                text = response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                answers[i] = exc
                conn.close()
                continue
            headers = {k.lower(): v for k, v in response.getheaders()}
            answers[i] = Answer(response.status, headers, text)
            if response.will_close:
                conn.close()

    def _connection(self, origin: tuple[str, str, int], slot: int) -> http.client.HTTPConnection:
        connections = self.pool.setdefault(origin, [])
        while len(connections) <= slot:
            connections.append(self._connect(origin))
        conn = connections[slot]
        if conn.sock is not None:
            # Kept alive, but idle connections are closed by services (urllib3 checks too):
            # between requests nothing may be readable but the end of the connection.
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
            if poller.poll(0):
                conn.close()  # reconnects on its next request
        return conn

    def _connect(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = origin
        conn: http.client.HTTPConnection
        if scheme != "https":  # a local test receiver only (the guard refuses other http URLs)
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            return _guarded(conn)
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=_ca_bundle())
        proxy = urllib.request.getproxies().get("https")
        if not proxy or urllib.request.proxy_bypass(host):
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
            return _guarded(conn)
        # HTTPS_PROXY: a CONNECT tunnel through it, TLS with the push service inside.
        url_check(f"https://{_bracketed(host)}:{port}/")  # the proxy will resolve it again
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        conn = http.client.HTTPSConnection(
            via.hostname or "", via.port or 80, timeout=self.timeout, context=self._tls
        )
        conn.set_tunnel(host, port)
        return conn

    def close(self) -> None:
        for connections in self.pool.values():
            for conn in connections:
                conn.close()
        self.pool.clear()


def _guarded(conn: http.client.HTTPConnection) -> http.client.HTTPConnection:
    """`conn` connecting through the outbound guard: http.client opens its socket with
    `self._create_connection`, which TLS then wraps with the host name (certificates are
    still checked against the name, not the pinned address)."""
    conn._create_connection = create_connection  # type: ignore[attr-defined]
    return conn


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ca_bundle() -> str:
    """The certificates requests (and so pywebpush) trusts: its variables, else certifi's."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    )


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)
