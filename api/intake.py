"""Inquiry intake: one transaction that finds or creates the patient and the journey row and
stores the inquiry. Committed before any Temporal call, so a lead is never lost (DESIGN §7)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.errors import conflict, field_error
from api.journey_starter import StartPlan, make_plan
from api.metrics import INQUIRIES
from api.schemas import InquiryCreate
from api.services import normalize_interest, resolve_interest
from models.enums import TERMINAL_STATUSES, Channel, JourneyStatus, RevenueLine, Stage
from models.journey_types import journey_workflow_id
from models.tables import ConsentRecord, Inquiry, Journey, Patient, Practice, utcnow

log = logging.getLogger(__name__)

ATTEMPTS = 3  # a lost race on a unique key is retried; the retry finds the winner's rows

# SQLite has one writer anyway; in-process serialization keeps two concurrent inquiries from the
# same new patient from creating twins (the embedded default runs one API process).
_SQLITE_INTAKE_LOCK = threading.Lock()


@dataclass(frozen=True)
class IntakeResult:
    inquiry_id: uuid.UUID
    patient_id: uuid.UUID
    journey_id: uuid.UUID
    status: str
    plan: StartPlan | None  # set only for a new inquiry: what to start


# Called with the new inquiry's id just before the intake commits: the audit row rides along.
BeforeCommit = Callable[[Session, uuid.UUID], None]


def request_hash(body: InquiryCreate, external_id: str | None) -> str:
    canonical = body.model_dump(mode="json") | {"external_id": external_id}
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def accept_inquiry(
    session: Session,
    practice: Practice,
    body: InquiryCreate,
    idempotency_key: str | None,
    before_commit: BeforeCommit | None = None,
    *,
    patient_id: uuid.UUID | None = None,
) -> IntakeResult:
    """`patient_id` names the patient when there is no phone or email to find them by (a
    direct message on a platform, api/inbound.py)."""
    external_id = body.external_id or idempotency_key
    digest = request_hash(body, external_id)
    for attempt in range(ATTEMPTS):
        try:
            with _serialized(session, practice.id, body):
                return _accept_once(
                    session, practice, body, external_id, digest, before_commit, patient_id
                )
        except IntegrityError:
            session.rollback()
            log.info("inquiry intake lost a unique-key race; retrying (attempt %d)", attempt + 1)
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def _serialized(session: Session, practice_id: uuid.UUID, body: InquiryCreate) -> Iterator[None]:
    """Serialize intakes that could match the same patient (same phone or same email)."""
    if session.get_bind().dialect.name != "postgresql":
        with _SQLITE_INTAKE_LOCK:
            yield
        return
    keys = sorted(
        int.from_bytes(
            hashlib.sha256(f"{practice_id}:{c}".encode()).digest()[:8], "big", signed=True
        )
        for c in (body.phone, body.email)
        if c
    )
    for key in keys:  # sorted: two intakes never wait on each other in opposite orders
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    yield


def _accept_once(
    session: Session,
    practice: Practice,
    body: InquiryCreate,
    external_id: str | None,
    digest: str,
    before_commit: BeforeCommit | None,
    patient_id: uuid.UUID | None = None,
) -> IntakeResult:
    if external_id is not None:
        existing = session.exec(
            select(Inquiry)
            .where(Inquiry.practice_id == practice.id)
            .where(Inquiry.external_id == external_id)
        ).first()
        if existing is not None:
            if existing.request_hash != digest:
                raise conflict("external_id already used with a different body")
            return IntakeResult(
                existing.id, existing.patient_id, existing.journey_id, existing.status, None
            )

    resolved = resolve_interest(body.interest)
    assert resolved is not None  # the schema validated it
    line, service = resolved
    if line.value not in practice.revenue_lines:
        raise field_error("interest", f"this practice does not offer {line.value}")
    if body.referred_by is not None and not _patient_exists(session, practice, body.referred_by):
        raise field_error("referred_by", "no such patient")

    patient = _find_or_create_patient(session, practice, body, patient_id)
    journey = _find_or_reopen_journey(session, practice, patient, line)
    inquiry = Inquiry(
        practice_id=practice.id,
        patient_id=patient.id,
        journey_id=journey.id,
        channel=body.channel.value,
        interest=normalize_interest(body.interest),
        revenue_line=line.value,
        service=service,
        message=body.message,
        source=body.source,
        external_id=external_id,
        request_hash=digest,
    )
    session.add(inquiry)
    session.flush()
    _record_consent(session, patient, body, inquiry)
    if before_commit is not None:
        before_commit(session, inquiry.id)
    session.commit()
    INQUIRIES.labels(body.channel.value).inc()
    plan = make_plan(inquiry, journey, patient, practice)
    return IntakeResult(inquiry.id, patient.id, journey.id, inquiry.status, plan)


def _record_consent(
    session: Session, patient: Patient, body: InquiryCreate, inquiry: Inquiry
) -> None:
    """Proof of consent: what was granted, through which door, in which words, when."""
    for channel, granted in ((Channel.SMS, body.consent.sms), (Channel.EMAIL, body.consent.email)):
        if granted:
            session.add(
                ConsentRecord(
                    practice_id=patient.practice_id,
                    patient_id=patient.id,
                    channel=channel.value,
                    granted=True,
                    source=f"inquiry:{body.channel.value}",
                    wording=body.consent.wording,
                    evidence=str(inquiry.id),
                    at=inquiry.received_at,
                )
            )


def _patient_exists(session: Session, practice: Practice, patient_id: uuid.UUID) -> bool:
    patient = session.get(Patient, patient_id)
    return patient is not None and patient.practice_id == practice.id


def find_patient_by_contact(
    session: Session, practice: Practice, phone: str | None, email: str | None
) -> Patient | None:
    """The practice's oldest patient with this phone, else with this email (intake and history
    import match people the same way)."""
    for column, value in ((Patient.phone, phone), (Patient.email, email)):
        if value:
            found = session.exec(
                select(Patient)
                .where(Patient.practice_id == practice.id)
                .where(column == value)
                .order_by(col(Patient.created_at))
            ).first()
            if found is not None:
                return found
    return None


def _find_or_create_patient(
    session: Session, practice: Practice, body: InquiryCreate, known: uuid.UUID | None = None
) -> Patient:
    patient = (
        session.get(Patient, known)
        if known
        else find_patient_by_contact(session, practice, body.phone, body.email)
    )
    if patient is None:
        patient = Patient(
            practice_id=practice.id,
            timezone=body.timezone or practice.timezone,
            referred_by=body.referred_by,
        )
    # Fill what we did not know; never erase. The latest stated zone/state wins.
    patient.first_name = patient.first_name or body.first_name
    patient.last_name = patient.last_name or body.last_name
    patient.phone = patient.phone or body.phone
    patient.email = patient.email or body.email
    if body.timezone:
        patient.timezone = body.timezone
    if body.state:
        patient.state = body.state
    # Consent is only ever turned on by an inquiry; opting out goes through events/webhooks.
    patient.sms_consent = patient.sms_consent or body.consent.sms
    patient.email_consent = patient.email_consent or body.consent.email
    session.add(patient)
    session.flush()
    return patient


def _find_or_reopen_journey(
    session: Session, practice: Practice, patient: Patient, line: RevenueLine
) -> Journey:
    """The workflow id is deterministic per (practice, patient, line) and unique in the table, so
    a new run after a closed one reuses (reopens) the same row."""
    workflow_id = journey_workflow_id(str(practice.id), str(patient.id), line)
    journey = session.exec(select(Journey).where(Journey.workflow_id == workflow_id)).first()
    if journey is None:
        journey = Journey(
            practice_id=practice.id,
            patient_id=patient.id,
            revenue_line=line.value,
            workflow_id=workflow_id,
        )
    elif journey.status in TERMINAL_STATUSES:
        journey.status = JourneyStatus.PENDING.value
        journey.stage = Stage.INQUIRY.value
        journey.cycle = 0
        journey.next_action = None
        journey.next_action_at = None
        journey.exit_reason = None
        journey.updated_at = utcnow()
    session.add(journey)
    session.flush()
    return journey
