"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed
with the secret's bytes (the spec's `whsec_<base64>` form)."""
from __future__ import annotations

import base64
import hashlib
import hmac

from framepress.service.errors import ConfigError

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    if not secret.startswith(PREFIX):
        raise ConfigError("the webhook secret must have the form whsec_<base64>")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except ValueError:
        raise ConfigError("the webhook secret after whsec_ is not base64") from None
    if len(key) < 16:
        raise ConfigError("the webhook secret is shorter than 16 bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, msg_id, timestamp, body),
            "content-type": "application/json", "user-agent": "framepress-webhooks"}


__all__ = ["secret_key", "signature", "headers"]
