"""Request and response models of the EMR integration endpoints (issue 6). Credentials go in and
never come out: responses name which credentials are stored, not their values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from api.schemas import RequestBody, ResponseBody, WebUrl
from integrations.mapping import validate_target
from integrations.model import POLLING_VENDORS, Vendor
from integrations.sources import REQUIRED_CREDENTIALS
from models.enums import RevenueLine

CredentialName = Annotated[str, Field(min_length=1, max_length=64)]
CredentialValue = Annotated[str, Field(min_length=1, max_length=4000)]
MapKey = Annotated[str, Field(min_length=1, max_length=200)]
DEFAULT_POLL_SECONDS = 300
PLACEHOLDER = "{vendor_patient_id}"
_WEB_URL: TypeAdapter[object] = TypeAdapter(WebUrl)


def _storable(value: dict[str, str] | None) -> dict[str, str] | None:
    # Dict entries escape RequestBody's per-field text check; same rule here.
    for item in (*(value or {}).keys(), *(value or {}).values()):
        if "\x00" in item:
            raise ValueError("must not contain NUL characters")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    return value


def _booking_url(value: str | None) -> str | None:
    if value is None:
        return None
    # Checked as a URL with the placeholder filled, stored as given (braces unescaped).
    try:
        _WEB_URL.validate_python(value.replace(PLACEHOLDER, "x"))
    except ValidationError:
        raise ValueError("not an http(s) URL") from None
    return value


def _targets_known(value: dict[str, str] | None) -> dict[str, str] | None:
    unknown = [k for k, v in (value or {}).items() if not validate_target(v)]
    if unknown:
        raise ValueError(
            f"{len(unknown)} mapping(s) name neither a catalog service nor a revenue line"
        )
    return value


def missing_credentials(vendor: Vendor, credentials: dict[str, str]) -> list[str]:
    return [k for k in REQUIRED_CREDENTIALS[vendor] if k not in credentials]


class IntegrationCreate(RequestBody):
    vendor: Vendor
    name: str = Field(min_length=1, max_length=100)
    base_url: WebUrl | None = Field(
        default=None, description="The vendor API's base URL (required for polled vendors)"
    )
    credentials: dict[CredentialName, CredentialValue] = Field(
        default_factory=dict,
        max_length=20,
        description="Vendor credentials, stored encrypted and never returned",
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 key for X-Signature; generated (and shown once) when omitted",
    )
    service_map: dict[MapKey, MapKey] = Field(
        default_factory=dict,
        max_length=500,
        description="Vendor service id or name -> catalog service key or revenue line",
    )
    default_revenue_line: RevenueLine | None = None
    enrol_unknown_patients: bool = Field(
        default=True,
        description="A booking for a patient we do not know creates the patient and a journey",
    )
    booking_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Booking link for messages; `{vendor_patient_id}` is filled in when known",
    )
    poll_interval_seconds: int | None = Field(default=None, ge=60, le=86400)

    _check_storable = field_validator("credentials", "service_map")(_storable)
    _check_booking_url = field_validator("booking_url")(_booking_url)
    _check_targets = field_validator("service_map")(_targets_known)

    @model_validator(mode="after")
    def _vendor_needs(self) -> IntegrationCreate:
        missing = missing_credentials(self.vendor, self.credentials)
        if missing:
            raise ValueError(f"credentials for {self.vendor.value} need: {', '.join(missing)}")
        if self.vendor in POLLING_VENDORS and self.vendor is not Vendor.FHIR_R4:
            if self.base_url is None:
                raise ValueError(f"base_url is required for {self.vendor.value}")
        return self

    @property
    def polls(self) -> bool:
        return self.vendor in POLLING_VENDORS and self.base_url is not None


class IntegrationUpdate(RequestBody):
    """Fields to change; absent ones stay. `credentials` replaces the stored set as a whole
    (rotation) and must hold the vendor's required names."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    credentials: dict[CredentialName, CredentialValue] | None = Field(default=None, max_length=20)
    service_map: dict[MapKey, MapKey] | None = Field(default=None, max_length=500)
    default_revenue_line: RevenueLine | None = None
    enrol_unknown_patients: bool | None = None
    booking_url: str | None = Field(default=None, max_length=2000)
    poll_interval_seconds: int | None = Field(default=None, ge=60, le=86400)

    _check_storable = field_validator("credentials", "service_map")(_storable)
    _check_booking_url = field_validator("booking_url")(_booking_url)
    _check_targets = field_validator("service_map")(_targets_known)


class IntegrationOut(ResponseBody):
    id: uuid.UUID
    practice_id: uuid.UUID
    vendor: str
    name: str
    status: str
    base_url: str | None
    service_map: dict[str, str]
    default_revenue_line: str | None
    enrol_unknown_patients: bool
    booking_url: str | None
    poll_interval_seconds: int | None
    webhook_path: str | None = Field(description="Where the vendor posts (webhook vendors)")
    credential_names: list[str] = Field(description="Which credentials are stored (not values)")
    schedule_state: str
    cursor: str | None
    last_poll_at: datetime | None
    last_poll_status: str | None
    last_error: str | None
    last_event_at: datetime | None
    events_received: int
    created_at: datetime
    updated_at: datetime


class IntegrationCreated(IntegrationOut):
    webhook_secret: str | None = Field(
        description="Generated signing secret, shown once (null when you supplied one)"
    )


class IntegrationPage(ResponseBody):
    items: list[IntegrationOut]


class ConnectionTest(ResponseBody):
    ok: bool
    error: str | None = Field(description="Error type and HTTP status only")


class WebhookReceipt(ResponseBody):
    received: int = Field(description="Events in the delivery")
    applied: int
    duplicates: int
