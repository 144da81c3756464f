"""Webhook verification: HMAC-SHA256 of the raw body with the integration's own secret.

Neither Boulevard nor Zenoti publishes a signature scheme we could confirm from public docs
(docs/integrations.md), so every webhook vendor uses ours: the secret is issued (or supplied) when
the integration is created, and the sender puts `sha256=<hex>` in `X-Signature`. Adding a vendor's
own scheme later means one more function here, chosen by vendor."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "x-signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(
        sign(secret, body).encode(), header.strip().encode("utf-8", "replace")
    )
