"""A real push service on loopback (RFC 8030), and fake browsers that subscribe to it.

The server does what Mozilla's and Google's push services do to a sender's request before it
takes a message: it checks the VAPID `Authorization: vapid t=<JWT>, k=<key>` header (RFC 8292:
an ES256 signature by `k`, `aud` = the service's origin, `exp` in the next 24 hours, a `sub`),
that `k` is the applicationServerKey the browser subscribed with, the `TTL` header and the
aes128gcm content coding; then it decrypts the body with the browser's private key and auth
secret (RFC 8291), exactly as the browser would, and keeps the plaintext.

Each endpoint can be scripted to answer what a real service answers when things go wrong
(410 Gone, 404, 429 with Retry-After, 500, or dropping the connection), one answer per request,
201 Created once the script runs out.

    with PushReceiver() as receiver:
        browser = receiver.subscribe(application_server_key=public_key)
        receiver.script(browser, 429, 201)
        ...
        receiver.messages(browser)  # the decrypted payloads, as dicts
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

DROP = "drop"  # scripted: close the connection without an answer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What a browser keeps for one push subscription: the endpoint its push service gave it,
    its P-256 key pair and auth secret (RFC 8291 §3), and the sender's key it subscribed with."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def to_json(self) -> dict[str, Any]:
        """As the browser's PushSubscription.toJSON() gives it."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass
class Attempt:
    """One POST the service saw, whatever it answered."""

    endpoint: str
    status: int | str  # the answer, or DROP
    headers: dict[str, str]
    claims: dict[str, Any] = field(default_factory=dict)
    sender_key: str = ""  # the VAPID `k`
    plaintext: bytes | None = None  # decrypted (only when the request was valid)
    error: str = ""
    peer: tuple[str, int] = ("", 0)  # the sender's address: one per connection

    def json(self) -> dict[str, Any]:
        assert self.plaintext is not None, self.error
        return json.loads(self.plaintext)


class PushReceiver:
    def __init__(
        self, tls: tuple[str, str] | None = None, idle_timeout: float | None = None
    ) -> None:
        """`tls`: (certificate file, key file) to serve HTTPS, as push services do;
        `idle_timeout`: close a kept-alive connection idle this long, as push services do."""
        self.lock = threading.Lock()
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.scripts: dict[str, deque[int | str]] = {}
        self.retry_after: dict[str, str] = {}
        self.attempts: list[Attempt] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self, idle_timeout))
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.origin = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # --- Fake browsers -----------------------------------------------------------------------

    def subscribe(self, *, application_server_key: str | None = None) -> BrowserSubscription:
        """A new browser subscription on this service (a fresh key pair and auth secret)."""
        path_id = uuid.uuid4().hex
        subscription = BrowserSubscription(
            endpoint=f"{self.origin}/push/{path_id}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=os.urandom(16),
            application_server_key=application_server_key,
        )
        with self.lock:
            self.subscriptions[path_id] = subscription
        return subscription

    def script(
        self, subscription: BrowserSubscription, *answers: int | str, retry_after: str = ""
    ) -> None:
        """The next answers for this endpoint, in order (then 201 again)."""
        key = _path_id(subscription.endpoint)
        with self.lock:
            self.scripts.setdefault(key, deque()).extend(answers)
            if retry_after:
                self.retry_after[key] = retry_after

    def forget(self, subscription: BrowserSubscription) -> None:
        """The browser unsubscribed: the endpoint is unknown from now on (404)."""
        with self.lock:
            self.subscriptions.pop(_path_id(subscription.endpoint), None)

    # --- What arrived ------------------------------------------------------------------------

    def attempts_for(self, subscription: BrowserSubscription) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.endpoint == subscription.endpoint]

    def delivered(self, subscription: BrowserSubscription) -> list[Attempt]:
        """The requests the service took (201) for this browser."""
        return [a for a in self.attempts_for(subscription) if a.status == 201]

    def messages(self, subscription: BrowserSubscription) -> list[dict[str, Any]]:
        return [a.json() for a in self.delivered(subscription)]

    # --- The request -------------------------------------------------------------------------

    def _answer(
        self, path_id: str, headers: dict[str, str], body: bytes, peer: tuple[str, int]
    ) -> Attempt:
        with self.lock:
            subscription = self.subscriptions.get(path_id)
            script = self.scripts.get(path_id)
            scripted = script.popleft() if script else 201
        endpoint = f"{self.origin}/push/{path_id}"
        attempt = Attempt(endpoint=endpoint, status=201, headers=headers, peer=peer)
        if subscription is None:
            attempt.status, attempt.error = 404, "no such subscription"
        else:
            try:
                self._check(subscription, attempt, headers)
                attempt.plaintext = http_ece.decrypt(
                    body,
                    private_key=subscription.private_key,
                    auth_secret=subscription.auth_secret,
                    version="aes128gcm",
                )
            except _Refused as exc:
                attempt.status, attempt.error = exc.status, str(exc)
            except Exception as exc:  # http_ece: not encrypted for this browser
                attempt.status, attempt.error = 400, f"cannot decrypt: {exc!r}"
            else:
                attempt.status = scripted
        with self.lock:
            self.attempts.append(attempt)
        return attempt

    def _check(
        self, subscription: BrowserSubscription, attempt: Attempt, headers: dict[str, str]
    ) -> None:
        scheme, _, params = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            raise _Refused(401, "no VAPID authorization")
        parts = dict(
            p.strip().split("=", 1) for p in params.split(",") if "=" in p
        )  # t=<jwt>, k=<key>
        token, key = parts.get("t", ""), parts.get("k", "")
        attempt.sender_key = key
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
            public = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(key)
            )
        except ValueError as exc:
            raise _Refused(401, f"malformed VAPID token: {exc}") from None
        attempt.claims = claims
        if header.get("alg") != "ES256" or len(signature) != 64:
            raise _Refused(401, "VAPID tokens are ES256")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        try:
            public.verify(
                encode_dss_signature(r, s),
                f"{header_b64}.{claims_b64}".encode(),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            raise _Refused(401, "bad VAPID signature") from None
        now = time.time()
        if claims.get("aud") != self.origin:
            raise _Refused(403, f"aud {claims.get('aud')!r} is not {self.origin}")
        if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 86400:
            raise _Refused(403, "exp must be within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise _Refused(403, "sub must be a mailto: or https: URL")
        expected = subscription.application_server_key
        if expected is not None and key != expected:
            raise _Refused(403, "signed with another key than the browser subscribed with")
        if "ttl" not in headers:
            raise _Refused(400, "TTL header missing")
        if headers.get("content-encoding") != "aes128gcm":
            raise _Refused(415, "content must be aes128gcm")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _path_id(endpoint: str) -> str:
    return endpoint.rsplit("/", 1)[1]


def _handler_for(
    receiver: PushReceiver, idle_timeout: float | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as push services do
        timeout = idle_timeout

        def do_POST(self) -> None:
            if not self.path.startswith("/push/"):
                self._reply(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            path_id = self.path.removeprefix("/push/")
            attempt = receiver._answer(path_id, headers, body, self.client_address[:2])
            if attempt.status == DROP:
                self.close_connection = True
                return
            extra = {}
            if attempt.status == 201:
                extra["Location"] = f"{receiver.origin}/message/{uuid.uuid4().hex}"
            if attempt.status == 429 and receiver.retry_after.get(path_id):
                extra["Retry-After"] = receiver.retry_after[path_id]
            self._reply(int(attempt.status), attempt.error, extra)

        def _reply(
            self, status: int, text: str = "", headers: dict[str, str] | None = None
        ) -> None:
            body = text.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

    return Handler
