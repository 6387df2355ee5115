"""The outbound-request guard (core/outbound.py, issue 19 item 3): only https URLs whose host is
public, checked from the URL, after DNS, and again when connecting, on real sockets on
loopback. The resolver is the module's own seam (`_resolve`): a DNS-rebinding attack is a
resolver that answers one address to the check and another to the connection."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core import outbound
from core.outbound import OutboundRefused, create_connection, url_check

PUBLIC = "93.184.215.14"  # resolved to, never connected to: the tests use no network


class Listener:
    """A TCP server on loopback that counts the connections it accepted."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def wait_for(self, count: int) -> int:
        deadline = time.monotonic() + 5
        while self.accepted < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.accepted

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


@pytest.fixture
def resolver(monkeypatch: Any) -> dict[str, list[list[str]]]:
    """answers[host]: the answers the resolver gives for host, one per lookup (the last one
    repeats). Lookups of other names fail, as they would without a network."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        queue = answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(outbound, "_resolve", resolve)
    answers["__lookups__"] = [lookups]  # type: ignore[list-item]
    return answers


@pytest.mark.parametrize(
    "url,reason",
    [
        ("http://push.example/p/1", "it must be an https:// URL"),
        ("ftp://push.example/p/1", "it must be an https:// URL"),
        ("push-service", "it must be an https:// URL"),
        ("https://[::1", "it is not a valid URL"),
        ("https://push.example:99999/", "it is not a valid URL"),
        ("https://user:pw@push.example/", "it must not hold a user name or password"),
        ("https://127.0.0.1:8443/p", "127.0.0.1, a loopback address"),
        ("https://127.1.2.3/p", "127.1.2.3, a loopback address"),
        ("https://[::1]/p", "::1, a loopback address"),
        ("https://localhost/p", "localhost is a loopback name"),
        ("https://api.localhost/p", "api.localhost is a loopback name"),
        ("https://10.1.2.3/p", "10.1.2.3, a private address"),
        ("https://172.16.0.1/p", "172.16.0.1, a private address"),
        ("https://192.168.1.1/p", "192.168.1.1, a private address"),
        ("https://[fd00::1]/p", "fd00::1, a private address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("https://[fe80::1]/p", "fe80::1, a link-local address"),
        ("https://100.64.0.1/p", "100.64.0.1, a shared (carrier-grade NAT) address"),
        ("https://224.0.0.251/p", "224.0.0.251, a multicast address"),
        ("https://[ff02::1]/p", "ff02::1, a multicast address"),
        ("https://0.0.0.0/p", "0.0.0.0, an unspecified address"),
        ("https://[::]/p", "::, an unspecified address"),
        ("https://[::ffff:127.0.0.1]/p", "a loopback address inside an IPv6 address"),
        ("https://[::ffff:a00:1]/p", "a private address inside an IPv6 address"),
        ("https://[2002:c0a8:101::1]/p", "a private address inside an IPv6 address"),  # 6to4
        ("https://[64:ff9b::7f00:1]/p", "a loopback address inside an IPv6 address"),  # NAT64
        ("https://192.0.2.10/p", "192.0.2.10, a private address"),  # documentation
        ("https://240.0.0.1/p", "240.0.0.1"),  # reserved
    ],
)
def test_it_refuses_urls_that_are_not_public_https(settings: Any, url: str, reason: str) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False

    with pytest.raises(OutboundRefused) as refused:
        url_check(url, resolve=False)

    assert reason in refused.value.reason


@pytest.mark.parametrize(
    "url",
    ["https://fcm.googleapis.com/fcm/send/abc", f"https://{PUBLIC}/p", "https://[2606:4700::1]/"],
)
def test_it_lets_public_https_urls_through(settings: Any, url: str) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False

    url_check(url, resolve=False)


def test_it_refuses_a_name_that_resolves_to_a_private_address(
    settings: Any, resolver: dict[str, Any]
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    resolver["push.internal.example"] = [["10.0.0.5"]]
    resolver["mixed.example"] = [[PUBLIC, "192.168.0.9"]]  # one private answer is enough
    resolver["metadata.example"] = [["::ffff:169.254.169.254"]]
    resolver["push.example"] = [[PUBLIC]]

    for host, reason in (
        ("push.internal.example", "resolves to 10.0.0.5, a private address"),
        ("mixed.example", "resolves to 192.168.0.9, a private address"),
        ("metadata.example", "a link-local address inside an IPv6 address"),
    ):
        with pytest.raises(OutboundRefused, match=re.escape(reason)):
            url_check(f"https://{host}/p")
    url_check("https://push.example/p")
    url_check("https://unresolvable.example/p")  # checked again, and refused, on connecting


def test_it_never_connects_to_a_private_address(
    settings: Any, listener: Listener, resolver: dict[str, Any]
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    resolver["push.example"] = [["127.0.0.1"]]
    resolver["localhost"] = [["127.0.0.1", "::1"]]

    for host in ("127.0.0.1", "push.example", "localhost"):
        with pytest.raises(OutboundRefused):
            create_connection((host, listener.port), timeout=2)

    assert listener.accepted == 0


def test_it_checks_again_when_connecting_a_name_that_rebinds(
    settings: Any, listener: Listener, resolver: dict[str, Any]
) -> None:
    # DNS rebinding: public when the URL is checked (at subscribe time, or just before
    # sending), loopback a moment later when the sender connects.
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False
    resolver["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    url = f"https://rebind.example:{listener.port}/push/1"

    url_check(url)  # passes: it resolved to a public address
    loopback = re.escape("resolves to 127.0.0.1, a loopback address")
    with pytest.raises(OutboundRefused, match=loopback):
        create_connection(("rebind.example", listener.port), timeout=2)

    assert listener.accepted == 0


def test_it_connects_to_the_address_it_checked_without_a_second_lookup(
    settings: Any, listener: Listener, resolver: dict[str, Any]
) -> None:
    # Allowed here only so that a loopback listener can stand for the checked address.
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True
    resolver["push.example"] = [["127.0.0.1"], ["10.9.9.9"]]  # a second lookup would differ

    sock = create_connection(("push.example", listener.port), timeout=2)
    try:
        assert sock.getpeername()[:2] == ("127.0.0.1", listener.port)
    finally:
        sock.close()
    assert resolver["__lookups__"][0] == ["push.example"]  # one lookup, pinned


def test_it_refuses_a_name_that_does_not_resolve_when_connecting(
    settings: Any, resolver: dict[str, Any]
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = False

    with pytest.raises(OSError):
        create_connection(("unresolvable.example", 443), timeout=2)


def test_it_allows_loopback_and_plain_http_to_loopback_only_when_told(
    settings: Any, listener: Listener
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True

    url_check(f"http://127.0.0.1:{listener.port}/push/1")
    url_check(f"http://[::1]:{listener.port}/push/1")
    url_check("https://10.0.0.5/p")
    with pytest.raises(OutboundRefused, match="https"):
        url_check("http://10.0.0.5/p")  # plain http stays loopback-only
    create_connection(("127.0.0.1", listener.port), timeout=2).close()
    assert listener.wait_for(1) == 1
