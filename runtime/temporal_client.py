"""The one factory for Temporal clients: API, worker, tests and tools all connect through here,
so the data converter and connection options live in one place."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from runtime.codec import EncryptionCodec
from runtime.converter import JourneyPayloadConverter
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
    rather than in the clear. Without keys (development without `make run`) payloads are plain.
    Either way the JSON is the SDK's default; `JourneyPayloadConverter` only decodes it faster."""
    keys = settings.payload_keys
    if not keys:
        return DataConverter(payload_converter_class=JourneyPayloadConverter)
    return DataConverter(
        payload_converter_class=JourneyPayloadConverter,
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


# Speed to lead (DESIGN §9): from well under a second to a few minutes.
FIRST_TOUCH_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def metrics_runtime(bind_address: str) -> Runtime:
    """A Core runtime serving Prometheus metrics (the SDK's and what activities record through
    `activity.metric_meter()`) at http://<bind_address>/metrics. One per process: the server
    binds when the runtime is made, so a taken port fails here, at start-up."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,  # Prometheus naming: journey_messages_total
                durations_as_seconds=True,
                histogram_bucket_overrides={
                    "journey_first_touch_latency": FIRST_TOUCH_BUCKETS_SECONDS,
                },
            )
        )
    )


async def connect(
    settings: Settings, *, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=_tls(settings),
        data_converter=data_converter(settings),
        runtime=runtime,
    )
