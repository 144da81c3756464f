"""The one factory for Temporal clients: API, worker, tests and tools all connect through here,
so the data converter and connection options live in one place."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from runtime.codec import EncryptionCodec
from runtime.settings import Settings

# Custom search attributes. Values are opaque ids and enums only: never PHI.
SA_PRACTICE_ID = SearchAttributeKey.for_keyword("PracticeId")
SA_PATIENT_ID = SearchAttributeKey.for_keyword("PatientId")
SA_REVENUE_LINE = SearchAttributeKey.for_keyword("RevenueLine")
SA_JOURNEY_STAGE = SearchAttributeKey.for_keyword("JourneyStage")
SA_NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")

SEARCH_ATTRIBUTES: dict[str, str] = {
    "PracticeId": "Keyword",
    "PatientId": "Keyword",
    "RevenueLine": "Keyword",
    "JourneyStage": "Keyword",
    "NextActionAt": "Datetime",
}


def journey_search_attributes(
    practice_id: str, patient_id: str, revenue_line: str, stage: str = "inquiry"
) -> TypedSearchAttributes:
    """The attributes a journey starts with (the workflow upserts stage and next action)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_PRACTICE_ID, practice_id),
            SearchAttributePair(SA_PATIENT_ID, patient_id),
            SearchAttributePair(SA_REVENUE_LINE, revenue_line),
            SearchAttributePair(SA_JOURNEY_STAGE, stage),
        ]
    )


def data_converter(settings: Settings) -> DataConverter:
    """The converter every client, worker and replayer shares. With PAYLOAD_ENCRYPTION_KEYS set,
    every payload (inputs, results, signals, queries, memos, summaries) is AES-256-GCM encrypted,
    and failures carry their message and stack trace in an encoded (so encrypted) attribute
    rather than in the clear. Without keys (development without `make run`) it is the default."""
    keys = settings.payload_keys
    if not keys:
        return DataConverter.default
    return DataConverter(
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The codec alone (for the codec server), or None without keys."""
    keys = settings.payload_keys
    return EncryptionCodec(keys) if keys else None


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert_path and settings.temporal_tls_key_path:
        ca = settings.temporal_tls_ca_path
        return TLSConfig(
            client_cert=Path(settings.temporal_tls_cert_path).read_bytes(),
            client_private_key=Path(settings.temporal_tls_key_path).read_bytes(),
            server_root_ca_cert=Path(ca).read_bytes() if ca else None,
        )
    # An API key (Temporal Cloud) implies TLS.
    return bool(settings.temporal_tls or settings.temporal_api_key)


async def connect(settings: Settings, *, address: str | None = None) -> Client:
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=_tls(settings),
        data_converter=data_converter(settings),
    )
