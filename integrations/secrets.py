"""Vendor credentials sealed at rest with AES-256-GCM (`cryptography`), under the newest key of
PAYLOAD_ENCRYPTION_KEYS (one key set to rotate; docs/security.md). The integration id is bound
as associated data, so a sealed blob copied onto another integration row does not open."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.codec import EncryptionKey

NONCE_BYTES = 12


class CredentialsUnavailable(RuntimeError):
    """No key configured, or the blob does not open. Never names a secret."""


def seal(keys: list[EncryptionKey], integration_id: str, secrets: dict[str, Any]) -> str:
    if not keys:
        raise CredentialsUnavailable("PAYLOAD_ENCRYPTION_KEYS is not set: cannot store credentials")
    key = keys[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.secret).encrypt(
        nonce, json.dumps(secrets).encode(), f"{key.id}:{integration_id}".encode()
    )
    return json.dumps({"kid": key.id, "ct": base64.b64encode(nonce + sealed).decode()})


def unseal(keys: list[EncryptionKey], integration_id: str, blob: str) -> dict[str, Any]:
    try:
        envelope = json.loads(blob)
        raw = base64.b64decode(envelope["ct"])
        key_id = str(envelope["kid"])
    except (ValueError, KeyError, TypeError):
        raise CredentialsUnavailable("stored credentials are unreadable") from None
    key = next((k for k in keys if k.id == key_id), None)
    if key is None:
        raise CredentialsUnavailable(f"credentials sealed with unknown key id {key_id[:64]!r}")
    try:
        plain = AESGCM(key.secret).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{key.id}:{integration_id}".encode()
        )
    except InvalidTag:
        raise CredentialsUnavailable("stored credentials failed authentication") from None
    value: dict[str, Any] = json.loads(plain)
    return value
