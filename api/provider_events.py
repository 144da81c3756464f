"""Provider events about messages we sent: Twilio status callbacks and SendGrid's Event Webhook.

They arrive late, repeated and out of order, so a status only ever moves forward
(sending < sent < delivered | failed; delivered and failed are final), and every change that
follows from an event (suppression, an opt-out signalled to journeys) is keyed so a repeat
changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from api.inbound import record_consent, signal_patient
from models.enums import Channel, EventType, MessageStatus
from models.tables import Message, Patient

RANK = {
    MessageStatus.SENDING.value: 1,
    MessageStatus.SENT.value: 2,
    MessageStatus.DELIVERED.value: 3,
    MessageStatus.FAILED.value: 3,
}
TWILIO_STATUS = {
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
}
TWILIO_SUPPRESS_CODES = frozenset({"21610"})
# Invalid number, not a mobile, unknown destination, landline or unreachable carrier.
TWILIO_UNUSABLE_CODES = frozenset({"21211", "21614", "30005", "30006"})


@dataclass
class EventsOutcome:
    updated: int = 0
    signal_journeys: list[uuid.UUID] = field(default_factory=list)


def advance(row: Message, status: MessageStatus, reason: str | None, at: datetime) -> bool:
    """Move the row's status forward only; False when the event is stale or repeated."""
    current = RANK.get(row.status, 0)
    if current >= 3 or RANK[status.value] <= current:
        return False
    row.status = status.value
    if reason:
        row.status_reason = reason[:200]
    if row.sent_at is None:
        row.sent_at = at
    row.retry_at = None
    return True


def _row(session: Session, message_id: str | None, provider_id: str | None) -> Message | None:
    if message_id:
        try:
            row = session.get(Message, uuid.UUID(message_id))
        except ValueError:
            row = None
        if row is not None:
            return row
    if provider_id:
        return session.exec(select(Message).where(Message.provider_id == provider_id)).first()
    return None


def twilio_status(
    session: Session,
    message_id: str | None,
    sid: str,
    status: str,
    error_code: str | None,
    at: datetime,
) -> EventsOutcome:
    outcome = EventsOutcome()
    row = _row(session, message_id, sid)
    mapped = TWILIO_STATUS.get(status)
    if row is None or mapped is None:
        return outcome
    if not row.provider_id:
        # The activity died after Twilio took the message: the callback records what the
        # activity could not, and the activity's retry finds it sent (never sends again).
        row.provider_id = sid[:100]
    reason = f"carrier {error_code}" if error_code else None
    if advance(row, mapped, reason, at):
        outcome.updated += 1
    patient = session.get(Patient, row.patient_id)
    if patient is not None and error_code in TWILIO_SUPPRESS_CODES and not patient.sms_suppressed:
        patient.sms_suppressed = True
        record_consent(session, patient, Channel.SMS, False, "provider", at, None, sid[:100])
        outcome.signal_journeys += signal_patient(
            session, patient, EventType.OPTED_OUT, f"twilio-status:{sid}", at, Channel.SMS
        )
    elif patient is not None and error_code in TWILIO_UNUSABLE_CODES:
        patient.sms_unusable = True
    session.add(row)
    session.commit()
    return outcome


def sendgrid_events(
    session: Session, events: list[dict[str, Any]], marketing_group: int | None, at: datetime
) -> EventsOutcome:
    outcome = EventsOutcome()
    for event in events:
        kind = str(event.get("event", ""))
        message_id = event.get("message_id")
        sg_id = str(event.get("sg_message_id", "")).split(".")[0] or None
        row = _row(session, str(message_id) if message_id else None, sg_id)
        if row is None:
            continue
        patient = session.get(Patient, row.patient_id)
        event_key = f"sendgrid:{event.get('sg_event_id') or uuid.uuid4()}"
        if kind == "delivered":
            outcome.updated += advance(row, MessageStatus.DELIVERED, None, at)
        elif kind in ("bounce", "dropped"):
            reason = f"email {kind}: {event.get('type') or event.get('reason') or ''}".strip()
            outcome.updated += advance(row, MessageStatus.FAILED, reason[:200], at)
            # A hard bounce means the address does not work; "blocked" may pass another day.
            if patient is not None and kind == "bounce" and event.get("type") != "blocked":
                patient.email_suppressed = True
        elif kind in ("spamreport", "unsubscribe", "group_unsubscribe") and patient is not None:
            group = event.get("asm_group_id")
            if kind == "group_unsubscribe" and marketing_group and group == marketing_group:
                # Out of offers only: care mail (reminders) keeps going.
                if patient.email_consent:
                    patient.email_consent = False
                    record_consent(session, patient, Channel.EMAIL, False, "sendgrid", at, kind)
            elif not patient.email_suppressed:
                patient.email_suppressed = True
                record_consent(session, patient, Channel.EMAIL, False, "sendgrid", at, kind)
                outcome.signal_journeys += signal_patient(
                    session, patient, EventType.OPTED_OUT, event_key, at, Channel.EMAIL
                )
        if patient is not None:
            session.add(patient)
        session.add(row)
    session.commit()
    return outcome
