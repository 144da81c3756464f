"""The payload codec (runtime/codec.py), the keys' validation in settings, and the converter the
one client factory builds from them."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from runtime.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    generate_key,
    parse_keys,
)
from runtime.settings import Settings
from runtime.temporal_client import data_converter
from tests.conftest import encrypted_settings

PHI = b'{"name": "Zebulon Quixote", "phone": "+14155550199"}'


def plain(data: bytes = PHI) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def codec(spec: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keys(spec))


async def test_round_trip_hides_data_and_original_metadata() -> None:
    c = codec(f"k1:{generate_key()}")
    [sealed] = await c.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert set(sealed.metadata) == {"encoding", KEY_ID_METADATA}
    raw = sealed.SerializeToString()
    assert b"Zebulon" not in raw and b"json/plain" not in raw
    assert await c.decode([sealed]) == [plain()]


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    c = codec(f"k1:{generate_key()}")
    a, b = await c.encode([plain(), plain()])
    assert a.data[:12] != b.data[:12] and a.data != b.data


async def test_rotation_old_payloads_still_decode_new_ones_use_the_new_key() -> None:
    old_key, new_key = generate_key(), generate_key()
    before = codec(f"2026-01:{old_key}")
    [old_payload] = await before.encode([plain()])

    rotated = codec(f"2026-06:{new_key},2026-01:{old_key}")
    assert await rotated.decode([old_payload]) == [plain()]
    [new_payload] = await rotated.encode([plain()])
    assert new_payload.metadata[KEY_ID_METADATA] == b"2026-06"
    # The old key alone cannot read what the new one wrote.
    with pytest.raises(PayloadDecryptionError, match="unknown key id '2026-06'"):
        await before.decode([new_payload])


async def test_tampered_ciphertext_is_rejected() -> None:
    c = codec(f"k1:{generate_key()}")
    [sealed] = await c.encode([plain()])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(PayloadDecryptionError, match="failed authentication") as err:
        await c.decode([tampered])
    assert "Zebulon" not in str(err.value)


async def test_relabelled_key_id_is_rejected() -> None:
    """The key id is associated data: moving a payload to another id does not decrypt it."""
    key = generate_key()
    c = codec(f"a:{key},b:{key}")
    [sealed] = await c.encode([plain()])
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"b"}, data=sealed.data)
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await c.decode([relabelled])


async def test_truncated_and_unknown_key_errors_name_the_key_id_only() -> None:
    key = generate_key()
    c = codec(f"k1:{key}")
    short = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"}, data=b"abc")
    with pytest.raises(PayloadDecryptionError, match="truncated"):
        await c.decode([short])
    [sealed] = await codec(f"gone:{generate_key()}").encode([plain()])
    with pytest.raises(PayloadDecryptionError) as err:
        await c.decode([sealed])
    assert "'gone'" in str(err.value) and key not in str(err.value)


async def test_unencrypted_payloads_pass_through_decode() -> None:
    """Histories recorded before encryption was switched on stay readable."""
    c = codec(f"k1:{generate_key()}")
    assert await c.decode([plain(), plain(b"null")]) == [plain(), plain(b"null")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("k1:not*base64", "not valid base64"),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "must decode to 32 bytes"),
        ("justakey", "entry 1 is not keyid:base64key"),
        (f"bad id:{generate_key()}", "entry 1 is not keyid:base64key"),
        (f"k1:{generate_key()},k1:{generate_key()}", "listed twice"),
    ],
)
def test_bad_keys_fail_at_settings_load_without_echoing_the_key(spec: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, payload_encryption_keys=spec)
    text = str(err.value)
    assert message in text and "PAYLOAD_ENCRYPTION_KEYS" in text
    for part in spec.replace(",", ":").split(":")[1::2]:
        assert part not in text  # neither the key nor the raw input


def test_keys_never_appear_in_the_settings_repr() -> None:
    key = generate_key()
    settings = Settings(_env_file=None, payload_encryption_keys=f"k1:{key}")
    assert key not in repr(settings) and key not in str(settings.model_dump())
    assert [k.id for k in settings.payload_keys] == ["k1"]
    assert key not in repr(settings.payload_keys)


def test_production_refuses_to_start_without_keys() -> None:
    real: dict[str, Any] = {
        "environment": "production",
        "admin_api_key": "a-real-admin-key-of-32-characters",
        "database_url": "postgresql+psycopg://db/app",
    }
    with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS is not set"):
        Settings(_env_file=None, **real)
    for empty in ("", "  "):
        with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS is not set"):
            Settings(_env_file=None, payload_encryption_keys=empty, **real)
    ok = Settings(_env_file=None, payload_encryption_keys=f"k1:{generate_key()}", **real)
    assert ok.payload_keys


async def test_without_keys_payloads_are_the_sdks_plain_json() -> None:
    converter = data_converter(Settings(_env_file=None))
    assert converter.payload_codec is None
    [ours] = await converter.encode([{"a": 1}])
    [sdk] = await DataConverter.default.encode([{"a": 1}])
    assert ours == sdk


async def test_the_converter_encrypts_payloads_and_failure_messages() -> None:
    converter = data_converter(encrypted_settings())
    assert isinstance(converter.payload_codec, EncryptionCodec)

    [payload] = await converter.encode(["Zebulon Quixote"])
    assert payload.metadata["encoding"] == ENCODING
    assert await converter.decode([payload]) == ["Zebulon Quixote"]

    failure = Failure()
    try:
        raise ApplicationError("could not reach Zebulon Quixote at +1 415 555 0199")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    raw = failure.SerializeToString()
    assert b"Zebulon" not in raw and b"0199" not in raw
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert "Zebulon Quixote" in str(decoded)
