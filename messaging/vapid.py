"""VAPID key pairs (RFC 8292): how a tenant identifies itself to browsers' push services.

One pair per tenant, made with its sender identity (messaging.services.sender_identity_create).
Browsers subscribe with the public key, so a pair is kept for good: a new one would silently
cut off every subscribed browser."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_key_pair() -> tuple[str, str]:
    """A new VAPID key pair as (public, private): the public key is the uncompressed P-256 point
    browsers take as `applicationServerKey`; the private key is the raw 32-byte scalar that
    pywebpush accepts."""
    vapid = Vapid()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return _b64url(public), _b64url(private)


def vapid_signing_key(private_key: str) -> Vapid:
    # The raw 32-byte scalar of vapid_key_pair(); pywebpush refuses a PEM string.
    return Vapid.from_raw(private_key.encode())
