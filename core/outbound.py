"""The one guard for every URL the product requests on a tenant's or a visitor's behalf: web-push
endpoints now, journey webhooks later. Without it, anyone with a public write key could make
the sender POST to `http://127.0.0.1:…` or to any host on the private network (server-side
request forgery).

A URL may be requested when:
- it is https (plain http only to a loopback address, and only when private addresses are
  allowed, for a local test receiver);
- every address its host resolves to is public: no loopback, private (RFC 1918, unique local),
  shared (100.64/10), link-local, multicast, reserved, unspecified or documentation address,
  nor an IPv6 address that embeds one (IPv4-mapped, 6to4, Teredo, NAT64);
- and again when connecting: `create_connection()` resolves the host itself, connects to an
  address it checked (so a second DNS answer cannot differ: no DNS rebinding) and checks the
  socket's peer address before a byte is sent. Callers follow no redirects.

`WAYFARER_OUTBOUND_ALLOW_PRIVATE=true` (off by default; /healthz warns while it is on) lets
tests and local development reach receivers on loopback and the private network.

The operator's own services (EMAIL_URL's SMTP server, the broker, an HTTPS_PROXY) are not
tenant URLs and are not guarded here.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import certifi
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class OutboundRefused(OSError):
    """A URL or address the guard will not let the product request; `reason` says why, for the
    user (an OSError: to a sender it is a connection that could not be made)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def allow_private() -> bool:
    return bool(getattr(settings, "WAYFARER_OUTBOUND_ALLOW_PRIVATE", False))


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the seam a DNS-rebinding test replaces)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: IPAddress) -> str | None:
    """What makes `address` not public ("a loopback address"), or None: it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = _kind(embedded)
            return f"{inner} inside an IPv6 address" if inner else None
    for kind, test in (
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a shared (carrier-grade NAT) address", address in _SHARED),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("not a public address", not address.is_global),
    ):
        if test:
            return kind
    return None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone id is no part of it
    except ValueError:
        return None


def address_refusal(address: str) -> str | None:
    """Why the product may not connect to `address` (an IP address): "127.0.0.1, a loopback
    address"; None when it may."""
    parsed = _parse_ip(address)
    if parsed is None:
        return f"{address}, not an IP address"
    if allow_private():
        return None
    kind = _kind(parsed)
    return f"{address}, {kind}" if kind else None


def _split(url: str) -> tuple[SplitResult, str, int]:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # e.g. "https://[::1" or a port out of range
        raise OutboundRefused("it is not a valid URL") from None
    scheme = parts.scheme.lower()
    if not host or scheme not in ("https", "http"):
        raise OutboundRefused("it must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("it must not hold a user name or password")
    return parts, host, port or (443 if scheme == "https" else 80)


def url_check(url: str, *, resolve: bool = True) -> None:
    """Raise OutboundRefused if the product may not request `url`. `resolve`: also look the
    host up and check every address (a host that does not resolve passes: connecting checks
    again, and refuses what it cannot resolve)."""
    parts, host, port = _split(url)
    literal = _parse_ip(host)
    # Plain http only to a local test receiver, in development.
    local = allow_private() and (host == "localhost" or bool(literal and literal.is_loopback))
    if parts.scheme.lower() == "http" and not local:
        raise OutboundRefused("it must be an https:// URL")
    if literal is not None:
        refusal = address_refusal(host)
        if refusal:
            raise OutboundRefused(f"its host is {refusal}")
        return
    if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
        if not allow_private():
            raise OutboundRefused(f"its host {host} is a loopback name")
        return
    if not resolve:
        return
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        return
    _check_all(host, addresses)


def _check_all(host: str, addresses: list[str]) -> None:
    # Every address: a name that also resolves to a private one is refused outright, whichever
    # one a client would try first.
    for address in addresses:
        refusal = address_refusal(address)
        if refusal:
            raise OutboundRefused(f"{host} resolves to {refusal}")


def create_connection(
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """socket.create_connection() for a URL's host that connects only to public addresses: it
    resolves the host once, checks every address, connects to a checked one (pinned: no second
    lookup) and checks the peer address of the socket before returning it. Raises
    OutboundRefused, or the OSError of the last address tried."""
    host, port = address
    try:
        addresses = [host] if _parse_ip(host) else _resolve(host, port)
    except UnicodeError:
        raise OutboundRefused(f"{host} is not a valid host name") from None
    _check_all(host, addresses)
    error: OSError = OSError(f"{host} resolves to no address")
    for ip in addresses:
        try:
            sock = socket.create_connection((ip, port), timeout, source_address)
        except OSError as exc:
            error = exc
            continue
        peer = str(sock.getpeername()[0])
        refusal = address_refusal(peer)
        if refusal:
            sock.close()
            raise OutboundRefused(f"{host} connected to {refusal}")
        return sock
    raise error


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (refused, connection error, timeout)
    error: str = ""
    refused: bool = False  # the guard refused the URL: retrying cannot help
    reason: str = ""  # why the guard refused it (may name a private address: not for tenants)


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """The deadline passed: end the call (the reading thread's read ends at once)."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)


def post_json(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    user_agent: str,
    timeout: float,
    deadline: float,
) -> Answer:
    """POST a JSON `body` to a tenant's `url` through this guard (public addresses only, pinned
    resolution, no redirects): journeys' webhook action and the outbound webhooks. `timeout`
    bounds each socket operation; `deadline` the whole call, so a receiver that trickles its
    answer a byte at a time cannot hold the caller (and its row locks) for as long as it likes:
    at the deadline the socket is shut down, which ends any read in progress."""
    try:
        url_check(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme.lower() == "https":
            context = ssl.create_default_context(cafile=certifi.where())
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port or 443, timeout=timeout, context=context
            )
        else:  # only a loopback receiver in development (url_check refused any other http)
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
        conn._create_connection = create_connection  # type: ignore[attr-defined]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # (A read cut short may look like the end of a complete answer: `cut` says it was not.)
        cut = threading.Event()
        watchdog = threading.Timer(deadline, _cut, args=(conn, cut))
        watchdog.daemon = True
        watchdog.start()
        status = 0
        try:
            conn.request(
                "POST",
                path,
                body=body,
                headers={"User-Agent": user_agent, "Content-Type": "application/json", **headers},
            )
            response = conn.getresponse()
            response.read(65536)
            status = response.status
        except (OSError, http.client.HTTPException):
            if not cut.is_set():
                raise
        finally:
            watchdog.cancel()
            conn.close()
        if cut.is_set():
            return Answer(0, f"no complete answer within {deadline:g} s")
        return Answer(status)
    except OutboundRefused as exc:
        return Answer(0, f"refused: {exc.reason}", refused=True, reason=exc.reason)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, f"{type(exc).__name__}: {exc}"[:300])
