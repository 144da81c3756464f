"""Webhook signature checks: each provider's own scheme, each refusing a missing, malformed or
wrong signature alike. Pure functions over the exact bytes/params received."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from twilio.request_validator import RequestValidator


def public_url(base_url: str, path: str, query: str) -> str:
    """The URL the provider called, as it saw it: behind a proxy the request we get names
    another host and scheme, so Twilio's signature is checked against PUBLIC_BASE_URL."""
    return base_url.rstrip("/") + path + (f"?{query}" if query else "")


def twilio_valid(
    auth_token: str | None, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """`X-Twilio-Signature`: HMAC-SHA1 over the URL and the sorted POST parameters."""
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def sendgrid_valid(
    public_key_b64: str | None, payload: bytes, signature_b64: str | None, timestamp: str | None
) -> bool:
    """SendGrid's signed Event Webhook: ECDSA P-256/SHA-256 over timestamp + raw body, with the
    verification key from SendGrid's Mail Settings (base64 DER)."""
    if not public_key_b64 or not signature_b64 or not timestamp:
        return False
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def hub_valid(app_secret: str | None, payload: bytes, header: str | None) -> bool:
    """Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


def google_valid(client_token: str | None, payload: bytes, header: str | None) -> bool:
    """Google's `X-Goog-Signature: base64(HMAC-SHA512 of the raw body, keyed by the partner's
    client token)`."""
    if not client_token or not header:
        return False
    digest = hmac.new(client_token.encode(), payload, hashlib.sha512).digest()
    return hmac.compare_digest(base64.b64encode(digest), header.strip().encode())
