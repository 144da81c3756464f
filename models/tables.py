"""SQLModel tables. UUID keys, timezone-aware UTC timestamps on every backend (SQLite drops the
zone, so `UTCDateTime` puts it back), enums stored as their string values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, **kw: Any) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable), **kw)


class Practice(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    state: str = Field(max_length=2)
    booking_url: str = Field(max_length=2000)
    review_url: str | None = Field(default=None, max_length=2000)
    revenue_lines: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)
    # Channels (issue 4). The public key names the practice on the public web-chat endpoint
    # (it is not a secret: it sits in the practice's web page). The SMS number routes inbound
    # texts and calls (Twilio's `To`) to the practice. Help text answers HELP.
    public_key: str | None = Field(default=None, max_length=64, unique=True, index=True)
    sms_number: str | None = Field(default=None, max_length=20, unique=True, index=True)
    help_text: str | None = Field(default=None, max_length=300)


class ApiKey(SQLModel, table=True):
    """A practice's API key: only the sha256 of the secret is stored. Revoked keys stay (the
    audit log names them); `revoked_at` set means the key answers 401."""

    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    role: str = Field(max_length=20)
    name: str = Field(max_length=100)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = _ts(default_factory=utcnow)
    revoked_at: datetime | None = _ts(nullable=True, default=None)
    last_used_at: datetime | None = _ts(nullable=True, default=None)


class AuditEvent(SQLModel, table=True):
    """Append-only (a database trigger refuses UPDATE and DELETE): who touched which patient
    data, when, from where. Ids and action names only, never PHI."""

    __tablename__ = "audit_event"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID | None = Field(default=None, index=True)
    actor_key_id: uuid.UUID | None = Field(default=None)
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=60, index=True)
    resource_type: str = Field(max_length=40)
    resource_id: str | None = Field(default=None, max_length=64, index=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )
    ip: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)


class Patient(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    email: str | None = Field(default=None, max_length=320, index=True)
    timezone: str = Field(max_length=64)
    state: str | None = Field(default=None, max_length=2)
    sms_consent: bool = False
    email_consent: bool = False
    sms_suppressed: bool = False
    email_suppressed: bool = False
    # The provider said the number cannot take texts (invalid, landline: Twilio 21211/21614).
    # Not an opt-out, and recorded apart from one: the patient did not refuse anything.
    sms_unusable: bool = False
    referred_by: uuid.UUID | None = Field(default=None)
    created_at: datetime = _ts(default_factory=utcnow)
    # Set by erasure: the row stays as a tombstone (ids the ledger points at), PHI nulled.
    erased_at: datetime | None = _ts(nullable=True, default=None)


class Inquiry(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("practice_id", "external_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    journey_id: uuid.UUID = Field(foreign_key="journey.id", index=True)
    channel: str = Field(max_length=20)
    interest: str = Field(max_length=64)
    revenue_line: str = Field(max_length=20)
    service: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=4000)
    source: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64)
    status: str = Field(default="received", max_length=20, index=True)
    attempts: int = 0
    received_at: datetime = _ts(default_factory=utcnow)
    started_at: datetime | None = _ts(nullable=True, default=None)


class Journey(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    revenue_line: str = Field(max_length=20)
    workflow_id: str = Field(max_length=200, unique=True)
    stage: str = Field(default="inquiry", max_length=32, index=True)
    status: str = Field(default="pending", max_length=20, index=True)
    cycle: int = 0
    next_action: str | None = Field(default=None, max_length=200)
    next_action_at: datetime | None = _ts(nullable=True, default=None)
    exit_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class StageEvent(SQLModel, table=True):
    """Every transition and exit: the funnel's source. `key` makes recording idempotent."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=250, unique=True)
    journey_id: uuid.UUID = Field(foreign_key="journey.id", index=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    from_stage: str | None = Field(default=None, max_length=32)
    to_stage: str = Field(max_length=32)
    status: str = Field(max_length=20)
    reason: str = Field(max_length=200)
    cycle: int = 0
    at: datetime = _ts()


class JourneyEventRow(SQLModel, table=True):
    """Events posted to a journey, persisted before they are signalled (the relay retries)."""

    __tablename__ = "journey_event"
    __table_args__ = (sa.UniqueConstraint("journey_id", "event_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    journey_id: uuid.UUID = Field(foreign_key="journey.id", index=True)
    event_id: str = Field(max_length=200)
    type: str = Field(max_length=40)
    payload: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    request_hash: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=20, index=True)
    received_at: datetime = _ts(default_factory=utcnow)
    delivered_at: datetime | None = _ts(nullable=True, default=None)


class Message(SQLModel, table=True):
    """The send ledger (both directions). The row is written before the provider is called."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    idempotency_key: str = Field(max_length=250, unique=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    journey_id: uuid.UUID | None = Field(default=None, foreign_key="journey.id", index=True)
    direction: str = Field(max_length=10)
    channel: str | None = Field(default=None, max_length=10)
    kind: str = Field(max_length=20)
    template: str = Field(max_length=100)
    stage: str | None = Field(default=None, max_length=32)
    body: str | None = Field(default=None, max_length=4000)
    status: str = Field(max_length=20, index=True)
    status_reason: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=20)
    provider_id: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    created_at: datetime = _ts()  # Temporal time of the first attempt
    retry_at: datetime | None = _ts(nullable=True, default=None)
    sent_at: datetime | None = _ts(nullable=True, default=None)


class OutboxMessage(SQLModel, table=True):
    """The embedded-default provider: messages recorded, not sent. Keyed like the ledger so a
    repeated provider call is a no-op."""

    __tablename__ = "outbox_message"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    idempotency_key: str = Field(max_length=250, unique=True)
    channel: str = Field(max_length=10)
    to: str = Field(max_length=320)
    body: str = Field(max_length=4000)
    handed_at: datetime = _ts(default_factory=utcnow)  # wall clock: when the provider got it


class StaffTask(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=250, unique=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    journey_id: uuid.UUID = Field(foreign_key="journey.id", index=True)
    kind: str = Field(max_length=40)
    status: str = Field(default="open", max_length=20)
    created_at: datetime = _ts()


class ConsentRecord(SQLModel, table=True):
    """Proof of consent (and of its withdrawal): append-only, one row per grant or revocation,
    with where it came from and the exact wording the patient saw. No contact details: the row
    points at the patient, so erasure of the patient leaves no PHI here."""

    __tablename__ = "consent_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    channel: str = Field(max_length=10)
    granted: bool
    source: str = Field(max_length=40)  # api | web_chat | sms_keyword | provider | webhook
    wording: str | None = Field(default=None, max_length=2000)
    evidence: str | None = Field(default=None, max_length=100)  # inquiry id, provider message id
    at: datetime = _ts(default_factory=utcnow)


class PracticeAccount(SQLModel, table=True):
    """A practice's account on a messaging platform (a Facebook page, an Instagram business
    account, a Google Business Profile agent): routes that platform's webhooks to the practice."""

    __tablename__ = "practice_account"
    __table_args__ = (sa.UniqueConstraint("channel", "account_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    channel: str = Field(max_length=10)  # facebook | instagram | google
    account_id: str = Field(max_length=200)


class PatientHandle(SQLModel, table=True):
    """Who a patient is on a messaging platform (a page-scoped id, a conversation id): how a
    direct message finds its patient when there is no phone or email. Scrubbed by erasure."""

    __tablename__ = "patient_handle"
    __table_args__ = (sa.UniqueConstraint("practice_id", "channel", "handle"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    channel: str = Field(max_length=10)
    handle: str = Field(max_length=200)


class PracticeLibrary(SQLModel, table=True):
    """A practice's edits to the built-in library (workflows/library.py): service rhythms,
    track steps and template texts, each validated when saved. `revision` counts saves; a
    journey records the revision its cycle runs ("library.revision")."""

    __tablename__ = "practice_library"

    practice_id: uuid.UUID = Field(foreign_key="practice.id", primary_key=True)
    revision: int = Field(default=0)
    # Treatment names appear in messages only when the practice opts in (PHI-minimal default).
    show_treatment_names: bool = Field(default=False)
    services: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    tracks: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    templates: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    updated_at: datetime = _ts(default_factory=utcnow)


# ---- EMR integrations (issue 6) --------------------------------------------------------------


class Integration(SQLModel, table=True):
    """One practice's connection to one EMR. Credentials (and the webhook signing secret) are
    AES-GCM sealed (integrations/secrets.py): the row never holds them in the clear, and the API
    never returns them. Poll state (cursor, last poll, last error) is written by the worker."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    vendor: str = Field(max_length=20)
    name: str = Field(max_length=100)
    status: str = Field(default="active", max_length=20)  # active | deleted
    base_url: str | None = Field(default=None, max_length=2000)
    credentials: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # sealed JSON
    # vendor service name or id -> catalog service key, or revenue line (workflows/catalog.py)
    service_map: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    default_revenue_line: str | None = Field(default=None, max_length=20)
    # A booking for a patient we do not know enrols them (patient + journey via the intake).
    enrol_unknown_patients: bool = True
    # The patient-facing booking link (`{vendor_patient_id}` filled in when known); unset: the
    # practice's booking_url.
    booking_url: str | None = Field(default=None, max_length=2000)
    poll_interval_seconds: int | None = Field(default=None)
    cursor: str | None = Field(default=None, max_length=64)  # last `updated` seen (ISO 8601)
    schedule_state: str = Field(default="none", max_length=20)  # none | pending | registered
    last_poll_at: datetime | None = _ts(nullable=True, default=None)
    last_poll_status: str | None = Field(default=None, max_length=20)
    last_error: str | None = Field(default=None, max_length=500)  # never PHI: codes and types
    last_event_at: datetime | None = _ts(nullable=True, default=None)
    events_received: int = 0
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class EmrInboundEvent(SQLModel, table=True):
    """Every vendor event heard, keyed by the vendor's event id: a repeat is a no-op. Holds ids
    and outcomes only; the patient's details go to the patient row, never here."""

    __tablename__ = "emr_inbound_event"
    __table_args__ = (sa.UniqueConstraint("integration_id", "vendor_event_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    integration_id: uuid.UUID = Field(foreign_key="integration.id", index=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    vendor_event_id: str = Field(max_length=200)
    source: str = Field(max_length=10)  # webhook | poll
    kind: str = Field(max_length=40)
    outcome: str = Field(max_length=20)  # applied | ignored | unmatched | unmapped
    detail: str | None = Field(default=None, max_length=200)
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id", index=True)
    journey_id: uuid.UUID | None = Field(default=None, foreign_key="journey.id", index=True)
    received_at: datetime = _ts(default_factory=utcnow)


class PatientExternalId(SQLModel, table=True):
    """Which vendor record is which of our patients, per integration."""

    __tablename__ = "patient_external_id"
    __table_args__ = (sa.UniqueConstraint("integration_id", "vendor_patient_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    integration_id: uuid.UUID = Field(foreign_key="integration.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    vendor_patient_id: str = Field(max_length=200)
    created_at: datetime = _ts(default_factory=utcnow)


class EmrAppointment(SQLModel, table=True):
    """The last known state of a vendor appointment: turns snapshots (polling) and vague
    'updated' webhooks into transitions (booked, moved, arrived...) and drops repeats."""

    __tablename__ = "emr_appointment"
    __table_args__ = (sa.UniqueConstraint("integration_id", "vendor_appointment_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    integration_id: uuid.UUID = Field(foreign_key="integration.id", index=True)
    vendor_appointment_id: str = Field(max_length=200)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    journey_id: uuid.UUID | None = Field(default=None, foreign_key="journey.id")
    status: str = Field(max_length=20)
    start_at: datetime | None = _ts(nullable=True, default=None)
    service: str | None = Field(default=None, max_length=64)  # catalog key once mapped
    updated_at: datetime = _ts(default_factory=utcnow)


# ---- the funnel's history (issue 7): a practice's past, imported, kept apart from live journeys


class HistoryImport(SQLModel, table=True):
    """One uploaded export file (leads, appointments or treatments). Counts only, no content."""

    __tablename__ = "history_import"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    kind: str = Field(max_length=20)  # leads | appointments | treatments
    preset: str = Field(max_length=20)  # generic | boulevard | zenoti | ...
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    created_at: datetime = _ts(default_factory=utcnow)


class HistoryPatient(SQLModel, table=True):
    """A patient of an imported export, by a hash of the export's own id (`ref`). Linked to a
    `patient` row when the export gave a way to reach them (phone or email): bulk enrollment
    needs one."""

    __tablename__ = "history_patient"
    __table_args__ = (sa.UniqueConstraint("practice_id", "ref"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    ref: str = Field(max_length=100)
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id", index=True)


class HistoryRecord(SQLModel, table=True):
    """One row of an export, normalised: a lead, an appointment or a treatment. Keyed by the
    export's row identity (`key`) so importing the same file twice adds nothing."""

    __tablename__ = "history_record"
    __table_args__ = (sa.UniqueConstraint("practice_id", "key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    import_id: uuid.UUID = Field(foreign_key="history_import.id", index=True)
    history_patient_id: uuid.UUID = Field(foreign_key="history_patient.id", index=True)
    key: str = Field(max_length=64)
    kind: str = Field(max_length=20)  # lead | appointment | treatment
    revenue_line: str = Field(max_length=20)
    service: str | None = Field(default=None, max_length=64)
    at: datetime = _ts()  # lead received / appointment time / treatment performed
    booked_at: datetime | None = _ts(nullable=True, default=None)  # appointments
    status: str | None = Field(default=None, max_length=20)  # appointments: completed|...
    responded_at: datetime | None = _ts(nullable=True, default=None)  # leads: first answer
    referred: bool = False  # leads: came referred by another patient
    amount: float | None = None  # treatments


class Enrollment(SQLModel, table=True):
    """Bulk enrollment's ledger: one row per (patient, line) ever enrolled, so a second run or
    a resumed one never starts a journey twice. `status`: planned -> started | skipped."""

    __table_args__ = (sa.UniqueConstraint("practice_id", "patient_id", "revenue_line"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    practice_id: uuid.UUID = Field(foreign_key="practice.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    journey_id: uuid.UUID = Field(foreign_key="journey.id", index=True)
    revenue_line: str = Field(max_length=20)
    reason: str = Field(max_length=20)  # recall_due | quiet_quote | lapsed
    service: str | None = Field(default=None, max_length=64)
    since: datetime = _ts()  # last treatment / the attended consult / last contact
    status: str = Field(default="planned", max_length=20, index=True)
    created_at: datetime = _ts(default_factory=utcnow)
    started_at: datetime | None = _ts(nullable=True, default=None)
