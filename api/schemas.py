"""Request and response models.

Requests are strict: unknown fields are refused, strings may not carry NUL bytes or lone
surrogates (neither database can store them, which would otherwise surface as a 500), datetimes
must carry a zone. Validation messages never echo the value: it may be PHI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    UrlConstraints,
    ValidationInfo,
    field_validator,
)

from api.services import resolve_interest
from models.enums import Channel, EventType, InquiryChannel, RevenueLine

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
KeyRole = Literal["practice_admin", "staff", "integration"]
NEEDS_APPOINTMENT = frozenset({EventType.CONSULT_BOOKED, EventType.APPOINTMENT_RESCHEDULED})


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not a known IANA time zone (e.g. America/New_York)")
    return value


def _state(value: str) -> str:
    upper = value.upper()
    if upper not in US_STATES:
        raise ValueError("not a US state or DC two-letter code")
    return upper


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime out of range") from None


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]
StateCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_state)]
# pydantic checks max_length on the normalized (percent-encoded) URL: what the column stores.
WebUrl = Annotated[AnyUrl, UrlConstraints(max_length=2000, allowed_schemes=["http", "https"])]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text") from None
        return value


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---- practices -------------------------------------------------------------------------------


class MessagingAccount(RequestBody):
    channel: Literal["facebook", "instagram", "google"]
    account_id: str = Field(
        min_length=1,
        max_length=200,
        description="Facebook page id, Instagram business account id, or Google agent id",
    )


AESTHETIC_LINES: tuple[RevenueLine, ...] = tuple(
    x for x in RevenueLine if x is not RevenueLine.DERMATOLOGY
)


class PracticeCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    timezone: TimeZoneName
    state: StateCode
    booking_url: WebUrl
    review_url: WebUrl | None = None
    # Dermatology (medical recalls) is opt-in: most aesthetic practices do not offer it.
    revenue_lines: list[RevenueLine] = Field(
        default_factory=lambda: list(AESTHETIC_LINES),
        min_length=1,
        max_length=len(RevenueLine),
    )
    sms_number: str | None = Field(
        default=None,
        max_length=32,
        description="The practice's Twilio number (inbound texts and calls), E.164",
    )
    help_text: str | None = Field(
        default=None, min_length=1, max_length=200, description="What a text of HELP answers"
    )
    messaging_accounts: list[MessagingAccount] = Field(
        default_factory=list,
        max_length=10,
        description="Where direct messages to the practice arrive (their webhooks route here)",
    )

    @field_validator("sms_number")
    @classmethod
    def _sms_number(cls, value: str | None) -> str | None:
        return None if value is None else _e164(value)

    @field_validator("revenue_lines")
    @classmethod
    def _dedupe(cls, value: list[RevenueLine]) -> list[RevenueLine]:
        return list(dict.fromkeys(value))


class PracticeOut(ResponseBody):
    id: uuid.UUID
    name: str
    timezone: str
    state: str
    booking_url: str
    review_url: str | None
    revenue_lines: list[RevenueLine]
    created_at: datetime
    public_key: str | None = Field(description="Names the practice on the public web chat")
    sms_number: str | None
    help_text: str | None


class PracticeCreated(PracticeOut):
    api_key: str = Field(description="A practice_admin key, shown once: only its hash is stored.")
    api_key_id: uuid.UUID
    api_key_prefix: str


# ---- API keys --------------------------------------------------------------------------------


class ApiKeyCreate(RequestBody):
    role: KeyRole
    name: str = Field(min_length=1, max_length=100, description="A label, e.g. 'EMR sync'")


class ApiKeyOut(ResponseBody):
    id: uuid.UUID
    role: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="Shown once: only its hash is stored.")


class ApiKeyPage(ResponseBody):
    items: list[ApiKeyOut]
    limit: int
    offset: int


# ---- audit -----------------------------------------------------------------------------------


class AuditOut(ResponseBody):
    id: uuid.UUID
    actor_key_id: uuid.UUID | None
    actor_role: str
    action: str
    resource_type: str
    resource_id: str | None
    at: datetime
    ip: str | None
    request_id: str | None


class AuditPage(ResponseBody):
    items: list[AuditOut]
    limit: int
    offset: int


# ---- inquiries -------------------------------------------------------------------------------


class Consent(RequestBody):
    sms: StrictBool = False
    email: StrictBool = False
    wording: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="The exact consent text the patient saw: kept as proof of consent",
    )


class InquiryCreate(RequestBody):
    channel: InquiryChannel
    first_name: Name | None = None
    last_name: Name | None = None
    # `email` is declared before `phone` so the phone check can see whether an email was given.
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(
        default=None, max_length=32, validate_default=True, description="Normalized to E.164 (US)"
    )
    interest: str = Field(
        min_length=1, max_length=64, description="A revenue line or a known service name"
    )
    message: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    referred_by: uuid.UUID | None = None
    consent: Consent = Field(default_factory=Consent)
    timezone: TimeZoneName | None = None
    state: StateCode | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise ValueError("not a valid email address") from None
        # Lower-cased so the same person matches whatever case they type.
        return result.normalized.lower()

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            # Only complain when email is known to be absent (not when it failed on its own).
            if "email" in info.data and info.data["email"] is None:
                raise ValueError("phone or email is required")
            return None
        return _e164(value)

    @field_validator("interest")
    @classmethod
    def _interest(cls, value: str) -> str:
        if resolve_interest(value) is None:
            lines = ", ".join(line.value for line in RevenueLine)
            raise ValueError(f"unknown interest: use a revenue line ({lines}) or a known service")
        return value


class InquiryAccepted(ResponseBody):
    inquiry_id: uuid.UUID
    patient_id: uuid.UUID
    journey_id: uuid.UUID
    status: str


# ---- journeys --------------------------------------------------------------------------------


class EventCreate(RequestBody):
    type: EventType
    id: str = Field(min_length=1, max_length=200, description="Event id: repeats are dropped")
    at: UtcDatetime | None = None
    appointment_at: UtcDatetime | None = Field(default=None, validate_default=True)
    service: str | None = Field(default=None, min_length=1, max_length=100)
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    channel: Channel | None = None

    @field_validator("appointment_at")
    @classmethod
    def _appointment_needed(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None and info.data.get("type") in NEEDS_APPOINTMENT:
            raise ValueError("required for consult_booked and appointment_rescheduled")
        return value


class EventAccepted(ResponseBody):
    journey_id: uuid.UUID
    event_id: str
    type: EventType
    journey_ids: list[uuid.UUID] = Field(description="Every journey the event goes to")
    duplicate: bool


class StageHistoryItem(ResponseBody):
    from_stage: str | None
    to_stage: str
    status: str
    reason: str
    at: datetime


class JourneyOut(ResponseBody):
    id: uuid.UUID
    patient_id: uuid.UUID
    revenue_line: str
    stage: str
    status: str
    cycle: int
    next_action: str | None
    next_action_at: datetime | None
    exit_reason: str | None
    workflow_id: str
    created_at: datetime
    updated_at: datetime


class JourneyDetail(JourneyOut):
    stage_history: list[StageHistoryItem]


class JourneyPage(ResponseBody):
    items: list[JourneyOut]
    limit: int
    offset: int


# ---- patients --------------------------------------------------------------------------------


class MessageOut(ResponseBody):
    id: uuid.UUID
    journey_id: uuid.UUID | None
    direction: str
    channel: str | None
    kind: str
    template: str
    status: str
    status_reason: str | None
    body: str | None
    created_at: datetime
    sent_at: datetime | None
    provider: str | None
    provider_id: str | None


class MessagePage(ResponseBody):
    patient_id: uuid.UUID
    items: list[MessageOut]
    limit: int
    offset: int


class ConversationItem(ResponseBody):
    """One turn of the patient's conversation, whatever the channel: a message either way, or
    the text of an inquiry (a form, the web chat)."""

    at: datetime
    direction: str  # inbound | outbound
    channel: str | None  # sms | email | form | chat | missed_call | ...
    source: str  # message | inquiry
    id: uuid.UUID
    journey_id: uuid.UUID | None
    template: str | None
    status: str
    body: str | None


class Conversation(ResponseBody):
    patient_id: uuid.UUID
    items: list[ConversationItem]
    limit: int
    offset: int


class StaffMessageCreate(RequestBody):
    body: str = Field(min_length=1, max_length=1600, description="The text, as staff wrote it")
    channel: Channel | None = Field(
        default=None, description="sms or email; default: where the patient last wrote, else sms"
    )
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Client id for the message: a repeat (same id) sends nothing new",
    )


class StaffMessageResult(ResponseBody):
    message_id: uuid.UUID | None
    status: str
    channel: str | None
    reason: str | None
    retry_at: datetime | None


# ---- web chat --------------------------------------------------------------------------------


class WebChatConsent(RequestBody):
    sms: StrictBool = False
    email: StrictBool = False
    wording: str = Field(
        min_length=1, max_length=2000, description="The consent text shown next to the boxes"
    )


class WebChatInquiry(RequestBody):
    first_name: Name | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    interest: str | None = Field(default=None, min_length=1, max_length=64)
    message: str | None = Field(default=None, max_length=2000)
    consent: WebChatConsent
    # Bot protection: a field people never see (bots fill it in) and how long the form was
    # open before it was sent (bots post at once).
    website: str | None = Field(default=None, max_length=200, description="Leave empty")
    elapsed_ms: int = Field(ge=0, le=86_400_000, description="How long the form was open")


class WebChatAccepted(ResponseBody):
    status: str = "received"


# ---- patient rights --------------------------------------------------------------------------


class PatientOut(ResponseBody):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    phone: str | None
    email: str | None
    timezone: str
    state: str | None
    sms_consent: bool
    email_consent: bool
    sms_suppressed: bool
    email_suppressed: bool
    referred_by: uuid.UUID | None
    created_at: datetime
    erased_at: datetime | None


class InquiryOut(ResponseBody):
    id: uuid.UUID
    journey_id: uuid.UUID
    channel: str
    interest: str
    revenue_line: str
    service: str | None
    message: str | None
    source: str | None
    external_id: str | None
    status: str
    received_at: datetime
    started_at: datetime | None


class JourneyEventOut(ResponseBody):
    id: uuid.UUID
    journey_id: uuid.UUID
    event_id: str
    type: str
    payload: dict[str, Any]
    status: str
    received_at: datetime
    delivered_at: datetime | None


class StaffTaskOut(ResponseBody):
    id: uuid.UUID
    journey_id: uuid.UUID
    kind: str
    status: str
    created_at: datetime


class EmrLinkOut(ResponseBody):
    """Which EMR record is this patient (issue 6)."""

    integration_id: uuid.UUID
    vendor_patient_id: str
    created_at: datetime


class EmrAppointmentOut(ResponseBody):
    integration_id: uuid.UUID
    vendor_appointment_id: str
    journey_id: uuid.UUID | None
    status: str
    start_at: datetime | None
    service: str | None
    updated_at: datetime


class ConsentOut(ResponseBody):
    id: uuid.UUID
    channel: str
    granted: bool
    source: str
    wording: str | None
    evidence: str | None
    at: datetime


class PatientExport(ResponseBody):
    patient: PatientOut
    inquiries: list[InquiryOut]
    consent_records: list[ConsentOut] = Field(default_factory=list)
    journeys: list[JourneyDetail]
    journey_events: list[JourneyEventOut]
    messages: list[MessageOut]
    staff_tasks: list[StaffTaskOut]
    emr_links: list[EmrLinkOut]
    emr_appointments: list[EmrAppointmentOut]


class ErasureResult(ResponseBody):
    patient_id: uuid.UUID
    erased_at: datetime
    journey_ids: list[uuid.UUID] = Field(description="Journeys sent an `erase` event")
