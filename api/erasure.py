"""Patient rights: export everything about one patient, and erase them.

Erasure, in one transaction: an `erase` event row for each of the patient's live journeys
(persist-then-signal, exactly like POST /v1/journeys/{id}/events, so it works while Temporal is
down and the relay delivers it later), PHI scrubbed from every table that holds it, the patient
row kept as a tombstone with `erased_at`, and the audit row. The send ledger keeps its rows (ids,
template, status, times) without bodies. Repeating it changes nothing and answers the same."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.errors import not_found
from api.event_intake import event_hash
from api.schemas import (
    ConsentOut,
    EmrAppointmentOut,
    EmrLinkOut,
    EventCreate,
    InquiryOut,
    JourneyDetail,
    JourneyEventOut,
    MessageOut,
    PatientExport,
    PatientOut,
    StaffTaskOut,
)
from models.enums import TERMINAL_STATUSES, EventType, InquiryStatus, JourneyStatus
from models.tables import (
    ConsentRecord,
    EmrAppointment,
    Enrollment,
    HistoryPatient,
    HistoryRecord,
    Inquiry,
    Journey,
    JourneyEventRow,
    Message,
    OutboxMessage,
    Patient,
    PatientExternalId,
    PatientHandle,
    StaffTask,
    utcnow,
)

ERASED_TEXT = ""  # what the outbox's NOT NULL text columns hold once scrubbed


def patient_of(session: Session, practice_id: uuid.UUID, patient_id: uuid.UUID) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice_id:
        raise not_found("patient")
    return patient


def _journeys(session: Session, patient: Patient) -> list[Journey]:
    return list(
        session.exec(
            select(Journey)
            .where(Journey.patient_id == patient.id)
            .order_by(col(Journey.created_at), col(Journey.id))
        ).all()
    )


def export_patient(
    session: Session, patient: Patient, detail: Callable[[Session, Journey], JourneyDetail]
) -> PatientExport:
    journeys = _journeys(session, patient)
    journey_ids = [j.id for j in journeys]
    inquiries = session.exec(
        select(Inquiry).where(Inquiry.patient_id == patient.id).order_by(col(Inquiry.received_at))
    ).all()
    events = session.exec(
        select(JourneyEventRow)
        .where(col(JourneyEventRow.journey_id).in_(journey_ids))
        .order_by(col(JourneyEventRow.received_at), col(JourneyEventRow.id))
    ).all()
    messages = session.exec(
        select(Message)
        .where(Message.patient_id == patient.id)
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    tasks = session.exec(
        select(StaffTask)
        .where(col(StaffTask.journey_id).in_(journey_ids))
        .order_by(col(StaffTask.created_at), col(StaffTask.id))
    ).all()
    links = session.exec(
        select(PatientExternalId)
        .where(PatientExternalId.patient_id == patient.id)
        .order_by(col(PatientExternalId.created_at))
    ).all()
    appointments = session.exec(
        select(EmrAppointment)
        .where(EmrAppointment.patient_id == patient.id)
        .order_by(col(EmrAppointment.updated_at))
    ).all()
    consents = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.patient_id == patient.id)
        .order_by(col(ConsentRecord.at), col(ConsentRecord.id))
    ).all()
    return PatientExport(
        patient=PatientOut.model_validate(patient),
        inquiries=[InquiryOut.model_validate(i) for i in inquiries],
        consent_records=[ConsentOut.model_validate(c) for c in consents],
        journeys=[detail(session, j) for j in journeys],
        journey_events=[JourneyEventOut.model_validate(e) for e in events],
        messages=[MessageOut.model_validate(m) for m in messages],
        staff_tasks=[StaffTaskOut.model_validate(t) for t in tasks],
        emr_links=[EmrLinkOut.model_validate(link) for link in links],
        emr_appointments=[EmrAppointmentOut.model_validate(a) for a in appointments],
    )


def erase_patient(session: Session, patient: Patient) -> list[uuid.UUID]:
    """Stage the erasure in `session` (the caller adds the audit row and commits). Returns the
    journeys that get an `erase` event (all the patient's journeys that had not ended, now or on
    the first call)."""
    patient.erased_at = patient.erased_at or utcnow()
    event_id = f"erase-{patient.id}"  # one erase per patient: repeats hit the unique key
    body = EventCreate(type=EventType.ERASE, id=event_id, at=patient.erased_at)
    payload = body.model_dump(mode="json")
    digest = event_hash(body)
    targets: list[uuid.UUID] = []
    for journey in _journeys(session, patient):
        already = session.exec(
            select(JourneyEventRow)
            .where(JourneyEventRow.journey_id == journey.id)
            .where(JourneyEventRow.event_id == event_id)
        ).first()
        if already is not None:
            targets.append(journey.id)
            continue
        if journey.status in TERMINAL_STATUSES:
            continue
        if journey.status == JourneyStatus.PENDING.value:
            _end_unstarted(journey)
        session.add(
            JourneyEventRow(
                journey_id=journey.id,
                event_id=event_id,
                type=EventType.ERASE.value,
                payload=payload,
                request_hash=digest,
            )
        )
        targets.append(journey.id)
    # Inquiries the relay has not journeyed yet are never started now (a start already in
    # flight still gets the erase event above, because the row stays pending until delivered).
    session.execute(
        sa.update(Inquiry)
        .where(col(Inquiry.patient_id) == patient.id)
        .where(col(Inquiry.status) == InquiryStatus.RECEIVED.value)
        .values(status=InquiryStatus.ERASED.value)
    )
    _scrub(session, patient)
    return targets


def _end_unstarted(journey: Journey) -> None:
    """A journey whose workflow was never started ends here, as its workflow would have."""
    journey.status = JourneyStatus.ERASED.value
    journey.exit_reason = "erasure requested"
    journey.next_action = None
    journey.next_action_at = None
    journey.updated_at = utcnow()


def _scrub(session: Session, patient: Patient) -> None:
    patient.first_name = None
    patient.last_name = None
    patient.phone = None
    patient.email = None
    session.add(patient)
    # Treatments are PHI too: an inquiry keeps its revenue line (the funnel needs it), not the
    # service asked about; posted events lose their service name.
    session.execute(
        sa.update(Inquiry)
        .where(col(Inquiry.patient_id) == patient.id)
        .values(message=None, service=None, interest=Inquiry.revenue_line)
    )
    journey_ids = select(Journey.id).where(Journey.patient_id == patient.id)
    events = session.exec(
        select(JourneyEventRow).where(col(JourneyEventRow.journey_id).in_(journey_ids))
    ).all()
    for event in events:
        if event.payload.get("service") is not None:
            event.payload = {**event.payload, "service": None}
            session.add(event)
    # Imported history (docs/funnel.md) keeps its lines and counts, not the treatments' names.
    imported = select(HistoryPatient.id).where(HistoryPatient.patient_id == patient.id)
    session.execute(
        sa.update(HistoryRecord)
        .where(col(HistoryRecord.history_patient_id).in_(imported))
        .values(service=None)
    )
    session.execute(
        sa.update(Enrollment).where(col(Enrollment.patient_id) == patient.id).values(service=None)
    )
    session.execute(
        sa.update(Message).where(col(Message.patient_id) == patient.id).values(body=None)
    )
    # EMR appointment states keep their vendor ids (later vendor events for this patient are
    # recognised and ignored), not the treatment.
    session.execute(
        sa.update(EmrAppointment)
        .where(col(EmrAppointment.patient_id) == patient.id)
        .values(service=None)
    )
    # Platform handles (a page-scoped id) identify the person on that platform: gone too.
    session.execute(sa.delete(PatientHandle).where(col(PatientHandle.patient_id) == patient.id))
    # The outbox is the stand-in provider's record of what it was handed: address and body.
    ledger_keys = select(Message.idempotency_key).where(Message.patient_id == patient.id)
    session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.idempotency_key).in_(ledger_keys))
        .values(to=ERASED_TEXT, body=ERASED_TEXT)
    )
