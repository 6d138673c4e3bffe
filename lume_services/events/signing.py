"""The signature of a delivery: ``sha256=<hex>``, HMAC-SHA256 of the exact body with the webhook's secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Lume-Signature"
EVENT_ID_HEADER = "X-Lume-Event-Id"
EVENT_TYPE_HEADER = "X-Lume-Event-Type"
DELIVERY_ID_HEADER = "X-Lume-Delivery-Id"
ATTEMPT_HEADER = "X-Lume-Attempt"
MIN_SECRET, MAX_SECRET = 16, 256


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes as 64 hex digits."""
    return secrets.token_hex(32)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), signature)
