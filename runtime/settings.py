"""Settings from the environment (and an optional `.env`), the names of DESIGN §8."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.codec import EncryptionKey, parse_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".data"

# Values that only make sense on a developer's laptop. Production refuses to start with them.
DEV_ADMIN_API_KEY = "dev-admin-key-change-me"
PLACEHOLDER_SECRETS = frozenset({"", DEV_ADMIN_API_KEY, "changeme", "change-me", "secret"})


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error must not echo the value it rejects (a key).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"

    database_url: str = f"sqlite:///{DATA_DIR / 'app.db'}"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "patient-journeys"
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    temporal_tls_cert_path: str | None = None
    temporal_tls_key_path: str | None = None
    temporal_tls_ca_path: str | None = None

    admin_api_key: str = DEV_ADMIN_API_KEY
    public_base_url: str = "http://127.0.0.1:8000"

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_messaging_service_sid: str | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    # `keyid:base64key,...`, newest first (runtime/codec.py). SecretStr: never in a repr or log.
    payload_encryption_keys: SecretStr | None = None
    # Origins of the Temporal UI allowed to call the codec server (/codec) from a browser.
    temporal_ui_origins: str = "http://127.0.0.1:8233,http://localhost:8233"

    # Operational knobs (not in DESIGN §8 but needed to run it; all have safe defaults).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Audit mode uploads a practice's export (POST /v1/history/imports): larger than any JSON.
    import_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    daily_message_cap: int = Field(default=3, ge=1)
    relay_interval_seconds: float = Field(default=2.0, gt=0)
    temporal_start_timeout_seconds: float = Field(default=3.0, gt=0)
    # Take the client IP (audit log, rate limits) from X-Forwarded-For: only behind a proxy that
    # sets it, otherwise any client could claim any address.
    trust_proxy_headers: bool = False
    # POST /v1/inquiries token buckets (requests per minute, also the burst). In-process: with
    # several API replicas each has its own buckets (see docs/architecture.md).
    inquiry_rate_per_key_per_minute: int = Field(default=600, ge=1)
    inquiry_rate_per_ip_per_minute: int = Field(default=600, ge=1)

    # Channels (issue 4, docs/channels.md). Throughput: the account's 10DLC (or toll-free)
    # messages per second; sends beyond it wait their turn, per worker process.
    sms_messages_per_second: float = Field(default=1.0, gt=0)
    email_messages_per_second: float = Field(default=50.0, gt=0)
    # SendGrid unsubscribe groups (ASM): offers and care mail are unsubscribed separately.
    sendgrid_marketing_group_id: int | None = None
    sendgrid_transactional_group_id: int | None = None
    # The Event Webhook's verification key (base64 DER, from SendGrid's Mail Settings).
    sendgrid_webhook_public_key: str | None = None
    # Instagram/Facebook messaging (Meta): the app secret signs webhooks (X-Hub-Signature-256);
    # the verify token answers Meta's subscription handshake.
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    # Google Business Profile messages: the partner's client token signs webhooks
    # (X-Goog-Signature, HMAC-SHA512) and answers the verification request.
    google_messages_client_token: SecretStr | None = None
    # Public web chat: requests per minute per client IP, and the least time a human takes to
    # fill the form (bot protection, with the honeypot field).
    web_chat_rate_per_ip_per_minute: int = Field(default=10, ge=1)
    web_chat_min_fill_seconds: float = Field(default=3.0, ge=0)

    # Observability and operations (issue 8, docs/operations.md). The worker serves the SDK's
    # and the app's Prometheus metrics at http://<address>/metrics; empty turns it off.
    worker_metrics_address: str = "127.0.0.1:9464"
    # `json`: one JSON object per line (ids, never PHI: the same log calls as `text`).
    log_format: Literal["text", "json"] = "text"
    # SIGTERM: the worker stops polling and gives in-flight activities this long to finish.
    worker_graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
    # Set: the API's GET /metrics takes `Authorization: Bearer <token>`. Unset: open, like
    # /healthz (no label names a patient or a practice); keep it off the public ingress.
    metrics_token: SecretStr | None = None

    @field_validator(
        "sendgrid_marketing_group_id", "sendgrid_transactional_group_id", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes unset variables as "": that means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("worker_metrics_address", mode="after")
    @classmethod
    def _host_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            host, sep, port = value.rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                raise ValueError("WORKER_METRICS_ADDRESS must be host:port (or empty: off)")
        return value

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _empty_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @field_validator("payload_encryption_keys", mode="after")
    @classmethod
    def _valid_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # an empty variable means "not configured"
        parse_keys(value.get_secret_value())  # ValueError names the variable, never the key
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            if self.admin_api_key in PLACEHOLDER_SECRETS or len(self.admin_api_key) < 24:
                raise ValueError(
                    "ADMIN_API_KEY is a placeholder or shorter than 24 characters; "
                    "production refuses to start without a real secret"
                )
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
            if (self.twilio_configured or self.sendgrid_configured) and not (
                self.public_base_url.startswith("https://")
            ):
                raise ValueError(
                    "PUBLIC_BASE_URL must be the public https URL of the API when Twilio or "
                    "SendGrid is configured: their webhooks are signed against it"
                )
            if self.payload_encryption_keys is None:
                raise ValueError(
                    "PAYLOAD_ENCRYPTION_KEYS is not set; production refuses to send patient "
                    "data to Temporal unencrypted"
                )
        return self

    @property
    def payload_keys(self) -> list[EncryptionKey]:
        """The parsed encryption keys, newest first; empty when none are configured."""
        if self.payload_encryption_keys is None:
            return []
        return parse_keys(self.payload_encryption_keys.get_secret_value())

    @property
    def ui_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.temporal_ui_origins.split(",") if o.strip()]

    @property
    def twilio_configured(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and self.twilio_auth_token.get_secret_value()
            and self.twilio_messaging_service_sid
        )

    @property
    def sendgrid_configured(self) -> bool:
        return bool(
            self.sendgrid_api_key
            and self.sendgrid_api_key.get_secret_value()
            and self.sendgrid_from_email
        )

    @property
    def messaging_provider(self) -> str:
        """For the banner: which provider each channel uses."""
        sms = "twilio" if self.twilio_configured else "outbox"
        email = "sendgrid" if self.sendgrid_configured else "outbox"
        return "outbox" if sms == email == "outbox" else f"sms: {sms}, email: {email}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
