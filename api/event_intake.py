"""Journey event intake: persist the event (one row per receiving journey) before it is signalled.

Opt-out and opt-in are patient-wide (DESIGN §5): the patient's suppression flags change in the
same transaction and every non-terminal journey of the patient gets its own copy of the event."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.errors import conflict, not_found
from api.schemas import EventCreate
from models.enums import TERMINAL_STATUSES, Channel, EventType
from models.tables import Journey, JourneyEventRow, Patient, Practice, utcnow

PATIENT_WIDE = frozenset({EventType.OPTED_OUT, EventType.OPTED_IN})


@dataclass(frozen=True)
class EventIntakeResult:
    journey_ids: list[uuid.UUID]
    duplicate: bool


# Called just before the intake commits, so the audit row shares the event's transaction.
BeforeCommit = Callable[[Session, uuid.UUID], None]


def event_hash(body: EventCreate) -> str:
    canonical = body.model_dump(mode="json")
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def accept_event(
    session: Session,
    practice: Practice,
    journey_id: uuid.UUID,
    body: EventCreate,
    before_commit: BeforeCommit | None = None,
) -> EventIntakeResult:
    try:
        return _accept_once(session, practice, journey_id, body, before_commit)
    except IntegrityError:
        # A concurrent request stored the same event id first: answer as for a repeat.
        session.rollback()
        return _accept_once(session, practice, journey_id, body, before_commit)


def _accept_once(
    session: Session,
    practice: Practice,
    journey_id: uuid.UUID,
    body: EventCreate,
    before_commit: BeforeCommit | None,
) -> EventIntakeResult:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.practice_id != practice.id:
        raise not_found("journey")
    digest = event_hash(body)
    existing = _event_row(session, journey.id, body.id)
    if existing is not None:
        # Checked before the terminal check: a retried opt-out must not turn into a 409.
        if existing.request_hash != digest:
            raise conflict("event id already used with a different body")
        return EventIntakeResult([journey.id], duplicate=True)
    ended = journey.status in TERMINAL_STATUSES
    # Opting back in is about the patient, not this journey: it must work (and reach the
    # patient's live journeys) even when posted against a journey that has ended.
    if ended and body.type is not EventType.OPTED_IN:
        raise conflict(f"journey has ended ({journey.status})")

    targets = [] if ended else [journey]
    if body.type in PATIENT_WIDE:
        targets += _suppress(session, journey, body)

    payload = body.model_dump(mode="json")
    # `at` defaults to receipt time, not to whenever the relay manages to deliver it.
    payload["at"] = payload["at"] or utcnow().isoformat()
    delivered_to: list[uuid.UUID] = []
    for target in targets:
        if target.id != journey.id and _event_row(session, target.id, body.id) is not None:
            continue
        session.add(
            JourneyEventRow(
                journey_id=target.id,
                event_id=body.id,
                type=body.type.value,
                payload=payload,
                request_hash=digest,
            )
        )
        delivered_to.append(target.id)
    if before_commit is not None:
        before_commit(session, journey.id)
    session.commit()
    return EventIntakeResult(delivered_to, duplicate=False)


def _event_row(session: Session, journey_id: uuid.UUID, event_id: str) -> JourneyEventRow | None:
    return session.exec(
        select(JourneyEventRow)
        .where(JourneyEventRow.journey_id == journey_id)
        .where(JourneyEventRow.event_id == event_id)
    ).first()


def _suppress(session: Session, journey: Journey, body: EventCreate) -> list[Journey]:
    """Apply an opt-out/in to the patient; return the patient's other live journeys."""
    patient = session.get(Patient, journey.patient_id)
    assert patient is not None  # foreign key
    suppressed = body.type is EventType.OPTED_OUT
    channels = [body.channel] if body.channel else list(Channel)
    if Channel.SMS in channels:
        patient.sms_suppressed = suppressed
    if Channel.EMAIL in channels:
        patient.email_suppressed = suppressed
    session.add(patient)
    others = session.exec(
        select(Journey)
        .where(Journey.patient_id == patient.id)
        .where(col(Journey.id) != journey.id)
        .order_by(col(Journey.created_at))
    ).all()
    return [j for j in others if j.status not in TERMINAL_STATUSES]
