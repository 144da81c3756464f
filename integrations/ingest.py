"""Normalized vendor events -> journey events, through the same intake as
POST /v1/journeys/{id}/events (api/event_intake.accept_event): rows are committed first, then
signalled by the caller (or by the relay when Temporal is down).

Per event, in order:
1. the vendor's event id was heard before -> nothing (the `emr_inbound_event` row says so);
2. the patient: by the integration's external-id link, else by phone, else by email (a match
   stores the link);
3. the appointment's last known state (`emr_appointment`) turns the event into a transition:
   booked, moved, cancelled, arrived, no-show, treated - or nothing, for a repeat snapshot;
4. the journey: the patient's live journey in the service's revenue line (or their most recent
   live one when the service is unknown). A booking for a patient we do not know, or in a line
   with no live journey, goes through the inquiry intake (channel `emr`): patient (if new) and
   journey are created exactly as for a lead, and the booking follows as an event.
   Anything else with no journey is recorded `unmatched` and changes nothing.

Outcomes are stored with ids and short reasons only, never PHI."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.event_intake import accept_event
from api.intake import accept_inquiry
from api.journey_starter import StartPlan
from api.schemas import EventCreate, InquiryCreate
from integrations.mapping import resolve
from integrations.model import ApptStatus, Kind, NormalizedEvent, PatientRef
from models.enums import TERMINAL_STATUSES, EventType, InquiryChannel, RevenueLine
from models.tables import (
    EmrAppointment,
    EmrInboundEvent,
    Integration,
    Journey,
    Patient,
    PatientExternalId,
    Practice,
    utcnow,
)
from workflows.catalog import find_service

log = logging.getLogger(__name__)

KIND_STATUS = {
    Kind.APPOINTMENT_BOOKED: ApptStatus.BOOKED,
    Kind.APPOINTMENT_RESCHEDULED: ApptStatus.BOOKED,
    Kind.APPOINTMENT_CANCELLED: ApptStatus.CANCELLED,
    Kind.APPOINTMENT_ARRIVED: ApptStatus.ARRIVED,
    Kind.APPOINTMENT_COMPLETED: ApptStatus.COMPLETED,
    Kind.APPOINTMENT_NO_SHOW: ApptStatus.NO_SHOW,
    Kind.TREATMENT_COMPLETED: ApptStatus.COMPLETED,
}


@dataclass
class IngestResult:
    journey_ids: list[uuid.UUID] = field(default_factory=list)  # with new pending events
    plans: list[StartPlan] = field(default_factory=list)  # new journeys to start
    outcomes: list[str] = field(default_factory=list)  # one per event, in order

    @property
    def duplicates(self) -> int:
        return self.outcomes.count("duplicate")


@dataclass
class _Step:
    """What one event does to a journey."""

    type: EventType
    event_id: str
    appointment_at: datetime | None = None
    service: str | None = None
    amount: float | None = None


def _short_id(value: str) -> str:
    # Journey event ids are at most 200 characters; vendor ids can be long URNs.
    return value if len(value) <= 200 else "emr:" + hashlib.sha256(value.encode()).hexdigest()


def e164(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_patient(
    session: Session, integration: Integration, ref: PatientRef
) -> tuple[Patient | None, bool]:
    """(patient, linked already). External id first, then phone, then email."""
    if ref.vendor_id:
        link = session.exec(
            select(PatientExternalId)
            .where(PatientExternalId.integration_id == integration.id)
            .where(PatientExternalId.vendor_patient_id == ref.vendor_id)
        ).first()
        if link is not None:
            return session.get(Patient, link.patient_id), True
    email = ref.email.strip().lower() if ref.email else None
    for column, value in ((Patient.phone, e164(ref.phone)), (Patient.email, email)):
        if value:
            found = session.exec(
                select(Patient)
                .where(Patient.practice_id == integration.practice_id)
                .where(column == value)
                .where(col(Patient.erased_at).is_(None))
                .order_by(col(Patient.created_at))
            ).first()
            if found is not None:
                return found, False
    return None, False


def _live_journey(session: Session, patient: Patient, line: RevenueLine | None) -> Journey | None:
    query = select(Journey).where(Journey.patient_id == patient.id)
    if line is not None:
        query = query.where(Journey.revenue_line == line.value)
    rows = session.exec(query.order_by(col(Journey.updated_at).desc())).all()
    return next((j for j in rows if j.status not in TERMINAL_STATUSES), None)


def _transition(
    event: NormalizedEvent, known: EmrAppointment | None, base: str
) -> tuple[ApptStatus, _Step | None]:
    status = event.status if event.kind is Kind.APPOINTMENT_OBSERVED else KIND_STATUS[event.kind]
    assert status is not None
    start = event.appointment_at
    before = known.status if known is not None else None
    if status is ApptStatus.TENTATIVE:
        return status, None
    if status is ApptStatus.BOOKED:
        if known is None or before in (
            ApptStatus.CANCELLED,
            ApptStatus.NO_SHOW,
            ApptStatus.TENTATIVE,
        ):
            stamp = start.isoformat() if start else ""
            return status, _Step(EventType.CONSULT_BOOKED, f"{base}:booked:{stamp}", start)
        if start is not None and known.start_at != start:
            return status, _Step(
                EventType.APPOINTMENT_RESCHEDULED,
                f"{base}:rescheduled:{start.isoformat()}",
                start,
            )
        return status, None
    if event.kind is Kind.TREATMENT_COMPLETED:
        # An invoice is its own fact even after the visit was marked complete.
        return status, _Step(EventType.TREATMENT_COMPLETED, f"{base}:treated")
    if status is ApptStatus.COMPLETED and event.awaits_invoice:
        return status, None
    if before == status:
        return status, None
    if status is ApptStatus.CANCELLED:
        # Never heard as booked: no journey was told of it, so there is nothing to cancel.
        if known is None or before is ApptStatus.TENTATIVE:
            return status, None
        return status, _Step(EventType.APPOINTMENT_CANCELLED, f"{base}:cancelled")
    if status is ApptStatus.ARRIVED:
        return status, _Step(EventType.ARRIVED, f"{base}:arrived")
    if status is ApptStatus.NO_SHOW:
        return status, _Step(EventType.NO_SHOW, f"{base}:no_show")
    # Completed: the appointment and its invoice share one event id, so a visit is treated once.
    return status, _Step(EventType.TREATMENT_COMPLETED, f"{base}:treated")


def ingest(
    session: Session,
    integration: Integration,
    events: list[NormalizedEvent],
    source: str,
) -> IngestResult:
    result = IngestResult()
    practice = session.get(Practice, integration.practice_id)
    assert practice is not None  # foreign key
    for event in events:
        try:
            outcome = _ingest_one(session, practice, integration, event, source, result)
        except IntegrityError:
            # A concurrent delivery of the same vendor event won the unique key.
            session.rollback()
            outcome = "duplicate"
        result.outcomes.append(outcome)
    return result


def _record(
    session: Session,
    integration: Integration,
    event: NormalizedEvent,
    source: str,
    outcome: str,
    detail: str | None = None,
    patient: Patient | None = None,
    journey_id: uuid.UUID | None = None,
) -> None:
    session.add(
        EmrInboundEvent(
            integration_id=integration.id,
            practice_id=integration.practice_id,
            vendor_event_id=event.vendor_event_id[:200],
            source=source,
            kind=event.kind.value,
            outcome=outcome,
            detail=detail,
            patient_id=patient.id if patient is not None else None,
            journey_id=journey_id,
        )
    )


def _finish(
    session: Session,
    integration: Integration,
    event: NormalizedEvent,
    source: str,
    outcome: str,
    detail: str | None = None,
    patient: Patient | None = None,
) -> str:
    _record(session, integration, event, source, outcome, detail, patient)
    session.commit()
    return outcome


def _link(session: Session, integration: Integration, patient: Patient, ref: PatientRef) -> None:
    if ref.vendor_id:
        session.add(
            PatientExternalId(
                integration_id=integration.id,
                patient_id=patient.id,
                vendor_patient_id=ref.vendor_id[:200],
            )
        )


def _fill_contact(patient: Patient, ref: PatientRef) -> None:
    """What we did not know; never overwrite (the patient may have told us otherwise)."""
    patient.first_name = patient.first_name or (ref.first_name or "")[:100] or None
    patient.last_name = patient.last_name or (ref.last_name or "")[:100] or None
    patient.phone = patient.phone or e164(ref.phone)
    if not patient.email and ref.email and len(ref.email) <= 320:
        patient.email = ref.email.strip().lower()


def _ingest_one(
    session: Session,
    practice: Practice,
    integration: Integration,
    event: NormalizedEvent,
    source: str,
    result: IngestResult,
) -> str:
    heard = session.exec(
        select(EmrInboundEvent)
        .where(EmrInboundEvent.integration_id == integration.id)
        .where(EmrInboundEvent.vendor_event_id == event.vendor_event_id[:200])
    ).first()
    if heard is not None:
        return "duplicate"
    patient, linked = find_patient(session, integration, event.patient)
    if patient is not None and patient.erased_at is not None:
        return _finish(session, integration, event, source, "ignored", "patient erased")

    if event.kind is Kind.PATIENT_UPSERTED:
        if patient is None:
            # A new client in the EMR is not a lead: the journey starts when they book.
            return _finish(session, integration, event, source, "ignored", "patient not known")
        _fill_contact(patient, event.patient)
        session.add(patient)
        if not linked:
            _link(session, integration, patient, event.patient)
        return _finish(session, integration, event, source, "applied", "patient updated", patient)

    line, service_key = resolve(
        event.services, integration.service_map, integration.default_revenue_line
    )
    known = None
    if event.appointment_id:
        known = session.exec(
            select(EmrAppointment)
            .where(EmrAppointment.integration_id == integration.id)
            .where(EmrAppointment.vendor_appointment_id == event.appointment_id[:200])
        ).first()
    base = f"emr:{integration.id}:" + (
        f"appt:{event.appointment_id}"
        if event.appointment_id
        else f"inv:{event.invoice_id or event.vendor_event_id}"
    )
    status, step = _transition(event, known, base)
    if known is not None and line is None and known.service:
        # A snapshot without its services: keep the line the booking was placed in.
        line, service_key = _line_of(known.service), known.service
    if step is None:
        if known is not None:
            known.status = status
            known.start_at = event.appointment_at or known.start_at
            known.updated_at = utcnow()
            session.add(known)
        detail = "awaiting the invoice" if event.awaits_invoice else "no change"
        return _finish(session, integration, event, source, "ignored", detail, patient)
    if step.type in (EventType.CONSULT_BOOKED, EventType.APPOINTMENT_RESCHEDULED) and (
        step.appointment_at is None
    ):
        return _finish(
            session, integration, event, source, "ignored", "no appointment time", patient
        )

    journey = None
    if known is not None and known.journey_id is not None:
        # The journey that heard the booking hears the rest of the appointment's life.
        heard_it = session.get(Journey, known.journey_id)
        if heard_it is not None and heard_it.status not in TERMINAL_STATUSES:
            journey = heard_it
    if journey is None and patient is not None:
        journey = _live_journey(session, patient, line)
    if journey is None and step.type is EventType.CONSULT_BOOKED:
        if not integration.enrol_unknown_patients:
            return _finish(
                session, integration, event, source, "unmatched", "enrolment is off", patient
            )
        if line is None:
            return _finish(
                session,
                integration,
                event,
                source,
                "unmapped",
                "service not mapped to the catalog",
                patient,
            )
        started = _enrol(session, practice, integration, event, line, service_key)
        if isinstance(started, str):
            return _finish(session, integration, event, source, "unmatched", started, patient)
        patient, journey, plan = started
        if plan is not None:
            result.plans.append(plan)
    if journey is None or patient is None:
        return _finish(session, integration, event, source, "unmatched", "no live journey", patient)

    # What our API's callers send: the service with bookings and treatments, the amount with
    # treatments; arrivals, no-shows and cancellations are bare.
    if step.type in (
        EventType.CONSULT_BOOKED,
        EventType.APPOINTMENT_RESCHEDULED,
        EventType.TREATMENT_COMPLETED,
    ):
        step.service = service_key
    if step.type is EventType.TREATMENT_COMPLETED:
        step.amount = event.amount
    try:
        body = EventCreate(
            type=step.type,
            id=_short_id(step.event_id),
            at=event.occurred_at,
            appointment_at=step.appointment_at,
            service=step.service,
            amount=step.amount,
        )
    except ValidationError:  # a time out of range, a negative amount: the vendor's data
        return _finish(
            session, integration, event, source, "ignored", "unusable event fields", patient
        )
    appointment_id = event.appointment_id
    target_journey = journey
    target_patient = patient

    def stage_rows(tx: Session, journey_id: uuid.UUID) -> None:
        # Rides in the event's own transaction: heard, linked and applied commit together.
        _record(
            tx, integration, event, source, "applied", step.type.value, target_patient, journey_id
        )
        if not linked:
            existing = find_patient(tx, integration, event.patient)
            if not existing[1]:
                _link(tx, integration, target_patient, event.patient)
        if appointment_id:
            row = known or EmrAppointment(
                integration_id=integration.id,
                vendor_appointment_id=appointment_id[:200],
                patient_id=target_patient.id,
                status=status,
            )
            row.status = status
            row.start_at = event.appointment_at or row.start_at
            row.journey_id = journey_id
            row.service = service_key or row.service
            row.updated_at = utcnow()
            tx.add(row)

    try:
        accepted = accept_event(session, practice, target_journey.id, body, stage_rows)
    except HTTPException as exc:
        # 409: the journey ended, or this event id already went in with other details (the
        # invoice after the appointment's completion): either way nothing more to tell it.
        session.rollback()
        return _finish(
            session,
            integration,
            event,
            source,
            "ignored",
            f"journey refused ({exc.status_code})",
            target_patient,
        )
    if accepted.duplicate:
        session.rollback()
        return _finish(
            session, integration, event, source, "ignored", "already told", target_patient
        )
    result.journey_ids += [j for j in accepted.journey_ids if j not in result.journey_ids]
    return "applied"


def _line_of(service_key: str) -> RevenueLine | None:
    service = find_service(service_key)
    return service.line if service is not None else None


def _enrol(
    session: Session,
    practice: Practice,
    integration: Integration,
    event: NormalizedEvent,
    line: RevenueLine,
    service_key: str | None,
) -> tuple[Patient, Journey, StartPlan | None] | str:
    """A booking with no live journey: the inquiry intake creates (or finds) the patient and
    the journey, exactly as a lead would. Returns a reason (no PHI) when it cannot."""
    ref = event.patient
    try:
        body = InquiryCreate(
            channel=InquiryChannel.EMR,
            first_name=(ref.first_name or None) and ref.first_name[:100],
            last_name=(ref.last_name or None) and ref.last_name[:100],
            email=ref.email,
            phone=e164(ref.phone),
            interest=service_key or line.value,
            external_id=_short_id(f"emr:{integration.id}:{event.appointment_id or ''}:enrol"),
        )
    except ValidationError:
        try:  # an unusable email should not cost us a usable phone (or the other way round)
            body = InquiryCreate(
                channel=InquiryChannel.EMR,
                phone=e164(ref.phone),
                interest=service_key or line.value,
                external_id=_short_id(f"emr:{integration.id}:{event.appointment_id or ''}:enrol"),
            )
        except ValidationError:
            return "no usable phone or email"
    try:
        intake = accept_inquiry(session, practice, body, None)
    except RequestValidationError:
        return "revenue line not offered by the practice"
    except HTTPException:
        return "enrolment conflict"
    patient = session.get(Patient, intake.patient_id)
    journey = session.get(Journey, intake.journey_id)
    assert patient is not None and journey is not None
    return patient, journey, intake.plan


def ingest_counted(
    session: Session, integration: Integration, events: list[NormalizedEvent], source: str
) -> IngestResult:
    """`ingest`, then the integration's counters (events received, last event) when any event
    applied: what both the webhook endpoint and the poll record."""
    result = ingest(session, integration, events, source)
    applied = result.outcomes.count("applied")
    if applied:
        row = session.get(Integration, integration.id)
        assert row is not None
        row.events_received += applied
        row.last_event_at = utcnow()
        session.add(row)
        session.commit()
    return result
