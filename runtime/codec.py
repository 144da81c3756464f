"""AES-256-GCM encryption of every Temporal payload (issue 5: PHI never reaches the Temporal
server in the clear).

An encrypted payload is

    metadata {"encoding": b"binary/encrypted", "encryption-key-id": b"<key id>"}
    data     = 12-byte random nonce + AES-GCM(key, nonce, original_payload.SerializeToString(),
                                              associated_data=<key id>)

The whole original Payload (its metadata included) is sealed, so the server sees neither the
data nor its encoding. The key id is bound as associated data: a payload relabelled with another
key id fails authentication instead of being decrypted under the wrong assumption.

Keys come from PAYLOAD_ENCRYPTION_KEYS, `keyid:base64-32-byte-key` separated by commas. The first
key is the newest and encrypts; every listed key decrypts, so rotation is "prepend a new key,
keep the old ones until their histories are past retention" (docs/security.md).

Errors never carry key material or payload contents: at most the key id, which is not secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENV_VAR = "PAYLOAD_ENCRYPTION_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12  # the size AES-GCM is designed for; random per payload
KEY_BYTES = 32  # AES-256
# Key ids travel in payload metadata and error messages: keep them short and boring.
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PayloadDecryptionError(ValueError):
    """A payload marked encrypted that cannot be decrypted (unknown key id, tampered, truncated).
    The message names the key id at most."""


@dataclass(frozen=True)
class EncryptionKey:
    id: str
    # repr=False: a key must never end up in a log line or a traceback's locals.
    secret: bytes = field(repr=False)


def generate_key() -> str:
    """A fresh key, base64 encoded, as PAYLOAD_ENCRYPTION_KEYS expects it after `keyid:`."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_keys(spec: str) -> list[EncryptionKey]:
    """Parse `keyid:base64key,...` (newest first). Raises ValueError naming the environment
    variable and, where it helps, the entry's position or key id - never the key itself."""
    keys: list[EncryptionKey] = []
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if not entries:
        raise ValueError(f"{ENV_VAR} is empty; expected keyid:base64key[,keyid:base64key...]")
    for n, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.match(key_id):
            raise ValueError(
                f"{ENV_VAR} entry {n} is not keyid:base64key (key ids are letters, digits, "
                "'.', '_' or '-', up to 64 characters)"
            )
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{ENV_VAR}: the key for id {key_id!r} is not valid base64") from None
        if len(secret) != KEY_BYTES:
            raise ValueError(
                f"{ENV_VAR}: the key for id {key_id!r} must decode to {KEY_BYTES} bytes "
                f"(AES-256), not {len(secret)}"
            )
        if any(k.id == key_id for k in keys):
            raise ValueError(f"{ENV_VAR}: key id {key_id!r} is listed twice")
        keys.append(EncryptionKey(key_id, secret))
    return keys


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key, decrypts with any; unencrypted payloads (histories recorded
    before encryption was switched on) pass through decode unchanged."""

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError(f"{ENV_VAR}: at least one key is required")
        self.current_key_id = keys[0].id
        self._ciphers = {k.id: AESGCM(k.secret) for k in keys}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), key_id.encode("utf-8")
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode("utf-8")},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            # repr() keeps a hostile id printable; ids are not secret.
            raise PayloadDecryptionError(
                f"payload encrypted with unknown key id {key_id[:64]!r}: "
                f"add that key to {ENV_VAR} to read it"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadDecryptionError(f"encrypted payload under key id {key_id!r} is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"encrypted payload under key id {key_id!r} failed authentication "
                "(tampered or corrupted)"
            ) from None
        original = Payload()
        try:
            original.ParseFromString(plain)
        except DecodeError:
            raise PayloadDecryptionError(
                f"encrypted payload under key id {key_id!r} does not hold a payload"
            ) from None
        return original
